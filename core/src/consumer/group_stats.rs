//! The group's pending count and lag, sampled with `XINFO GROUPS` on the
//! control connection at the configured interval (off by default), for
//! `info()` and the metrics gauges. A failed sample is a warning: it never
//! stops the consumer.

use std::time::Instant;

use crate::error::Error;
use crate::reply::{self, GroupCounts, ReplyError};
use crate::resp::Frame;

use super::lifecycle::Phase;
use super::report::Warning;
use super::timers::Timer;
use super::Consumer;

impl Consumer {
    /// The next sample, when due.
    pub(super) fn sample_group_stats(&mut self, now: Instant) {
        let Some(interval) = self.cfg.group_stats_interval else {
            return;
        };
        if self.links.control().phase() != Some(Phase::Running)
            || !self.timers.take_due(Timer::GroupStats)
        {
            return;
        }
        self.timers.set(Timer::GroupStats, now + interval);
        self.outbox.group_stats(now);
    }

    /// A sample came back.
    pub(super) fn on_group_stats(&mut self, frame: Frame) {
        match reply::xinfo_group(frame, &self.cfg.group) {
            Ok(counts) => self.group_counts = counts,
            Err(e) => {
                let error = match e {
                    ReplyError::Server(s) => Error::Server(s),
                    ReplyError::Protocol(p) => Error::Protocol(p),
                };
                self.warn(Warning::SampleFailed {
                    command: "XINFO GROUPS",
                    error,
                });
            }
        }
    }

    /// The group's counts at the last sample (`None` before the first, or
    /// when sampling is off).
    pub fn group_counts(&self) -> Option<GroupCounts> {
        self.group_counts
    }
}
