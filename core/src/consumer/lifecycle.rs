//! The connections' lifecycle (each down, connecting, or up with its
//! session) and the consumer's (running, draining, stopped), and the
//! reconnect backoff.

use std::time::Duration;

use crate::resp::Decoder;

/// Which of a consumer's connections an event, input or write is about.
///
/// The control connection carries set-up, acks, claims, heartbeats and dead
/// letters; with a separate read connection
/// ([`ConsumerConfig::uses_read_connection`](crate::ConsumerConfig::uses_read_connection))
/// reads of new entries go on that one, so a blocked read never holds up
/// the others. Both are opened and lost together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Conn {
    /// Set-up and everything but reads of new entries (all of it, with one
    /// connection).
    Control,
    /// Reads of new entries (`XREADGROUP ... >`), which may block.
    Read,
    /// The connection that finds where the data connections go: the
    /// sentinel asked for the master and subscribed to its failovers (only
    /// with [`ConsumerConfig::sentinel`](crate::ConsumerConfig::sentinel)).
    /// It is opened and lost on its own: the data connections go on
    /// without it.
    Discovery,
}

impl Conn {
    /// The data connections, control first (the discovery one is not
    /// among them).
    pub const ALL: [Conn; 2] = [Conn::Control, Conn::Read];

    /// How many kinds there are: the size of an adapter's socket array.
    pub const COUNT: usize = 3;

    /// 0 for the control connection, 1 for the read one, 2 for the
    /// discovery one: where an adapter keeps each one's socket in an array.
    pub const fn index(self) -> usize {
        match self {
            Conn::Control => 0,
            Conn::Read => 1,
            Conn::Discovery => 2,
        }
    }
}

/// The consumer's connections: the control one, and the read one when
/// reads of new entries have their own.
#[derive(Debug)]
pub(super) struct Links {
    control: Link,
    read: Option<Link>,
    /// Reads of new entries go in a consumer of several streams' combined
    /// read, on one read connection for all: whether it is ready (see
    /// [`combine_reads`](Self::combine_reads)).
    combined: Option<bool>,
}

/// The connection.
#[derive(Debug)]
pub(super) enum Link {
    /// None; a reconnect may be scheduled (see the timer table).
    Down,
    /// [`Event::Connect`](super::Event::Connect) asked for one.
    Connecting,
    /// Open, with what lives as long as it does.
    Up(Session),
}

/// What lives as long as one connection.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) decoder: Decoder,
    pub(super) phase: Phase,
    /// The server has `XACKDEL` (Redis 8.2+).
    pub(super) has_xackdel: bool,
}

/// How far a connection's set-up has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for this many handshake replies.
    Handshake { left: usize },
    /// Waiting for `XGROUP CREATE`.
    Group,
    /// Group ensured: replay, claim, read.
    Running,
}

/// The consumer as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Running,
    /// Asked to stop: no new reads; in-flight work finishes until the drain
    /// deadline (in the timer table).
    Draining,
    /// Stopped for good.
    Stopped,
}

impl Link {
    pub(super) fn session(&self) -> Option<&Session> {
        match self {
            Link::Up(session) => Some(session),
            Link::Down | Link::Connecting => None,
        }
    }

    pub(super) fn session_mut(&mut self) -> Option<&mut Session> {
        match self {
            Link::Up(session) => Some(session),
            Link::Down | Link::Connecting => None,
        }
    }

    pub(super) fn is_up(&self) -> bool {
        matches!(self, Link::Up(_))
    }

    /// The phase of the open connection.
    pub(super) fn phase(&self) -> Option<Phase> {
        self.session().map(|s| s.phase)
    }
}

impl Links {
    /// Both connecting (the read one only when it is used).
    pub(super) fn connecting(read_connection: bool) -> Self {
        Links {
            control: Link::Connecting,
            read: read_connection.then_some(Link::Connecting),
            combined: None,
        }
    }

    /// The connections used, control first.
    pub(super) fn used(&self) -> impl Iterator<Item = Conn> {
        [Some(Conn::Control), self.read.as_ref().map(|_| Conn::Read)]
            .into_iter()
            .flatten()
    }

    /// Both down, until the sentinels name the master.
    pub(super) fn down(read_connection: bool) -> Self {
        Links {
            control: Link::Down,
            read: read_connection.then_some(Link::Down),
            combined: None,
        }
    }

    /// `conn`'s link (a read connection not used, and the sentinel one,
    /// which is not a data connection, are always down here).
    pub(super) fn get(&self, conn: Conn) -> &Link {
        match conn {
            Conn::Control => &self.control,
            Conn::Read => self.read.as_ref().unwrap_or(&Link::Down),
            Conn::Discovery => &Link::Down,
        }
    }

    /// `conn`'s session, if it is up.
    pub(super) fn session_mut(&mut self, conn: Conn) -> Option<&mut Session> {
        match conn {
            Conn::Control => self.control.session_mut(),
            Conn::Read => self.read.as_mut().and_then(Link::session_mut),
            Conn::Discovery => None,
        }
    }

    /// Sets `conn`'s link (one not used stays unused).
    pub(super) fn set(&mut self, conn: Conn, link: Link) {
        match conn {
            Conn::Control => self.control = link,
            Conn::Read => {
                if let Some(read) = &mut self.read {
                    *read = link;
                }
            }
            Conn::Discovery => {}
        }
    }

    /// The control connection (everything but new-entry reads).
    pub(super) fn control(&self) -> &Link {
        &self.control
    }

    /// The control connection's session, if it is up.
    pub(super) fn control_mut(&mut self) -> Option<&mut Session> {
        self.control.session_mut()
    }

    /// Whether reads of new entries have a connection of their own (or
    /// one shared by the streams of a combined read).
    pub(super) fn has_read(&self) -> bool {
        self.read.is_some() || self.combined.is_some()
    }

    /// Reads of new entries go in a combined read, on the read connection
    /// this part opens (`own`) or another part's: not ready until
    /// [`set_combined_ready`](Self::set_combined_ready).
    pub(super) fn combine_reads(&mut self, own: bool) {
        if !own {
            self.read = None;
        }
        self.combined = Some(false);
    }

    /// Reads of new entries no longer go in a combined read: on this
    /// part's own read connection if it has one, else on the control one.
    pub(super) fn uncombine_reads(&mut self) {
        self.combined = None;
    }

    /// Whether the combined read's connection is ready; returns whether
    /// that changed.
    pub(super) fn set_combined_ready(&mut self, ready: bool) -> bool {
        let was = self.combined.replace(ready);
        was.is_some_and(|was| was != ready)
    }

    /// Whether the read connection is up and set up (or not used; with a
    /// combined read, whether that is ready).
    pub(super) fn read_ready(&self) -> bool {
        if let Some(ready) = self.combined {
            return ready;
        }
        self.read
            .as_ref()
            .map_or(true, |r| r.phase() == Some(Phase::Running))
    }

    /// Every connection down; returns those that were not (to close).
    pub(super) fn all_down(&mut self) -> Vec<Conn> {
        let open: Vec<Conn> = self
            .used()
            .filter(|&c| !matches!(self.get(c), Link::Down))
            .collect();
        for &conn in &open {
            self.set(conn, Link::Down);
        }
        open
    }

    /// Every connection used is asked for again.
    pub(super) fn all_connecting(&mut self) -> Vec<Conn> {
        let used: Vec<Conn> = self.used().collect();
        for &conn in &used {
            self.set(conn, Link::Connecting);
        }
        used
    }
}

impl Session {
    /// A new connection awaiting `handshake` replies.
    pub(super) fn new(handshake: usize) -> Self {
        Session {
            decoder: Decoder::new(),
            phase: Phase::Handshake { left: handshake },
            has_xackdel: false,
        }
    }

    /// One handshake reply came; returns whether that was the last.
    pub(super) fn handshake_answered(&mut self) -> bool {
        if let Phase::Handshake { left } = &mut self.phase {
            *left = left.saturating_sub(1);
            return *left == 0;
        }
        false
    }
}

/// Exponential reconnect backoff with equal jitter from a seeded generator.
#[derive(Debug)]
pub(super) struct Backoff {
    attempt: u32,
    rng: SplitMix64,
}

impl Backoff {
    pub(super) fn new(seed: u64) -> Self {
        Backoff {
            attempt: 0,
            rng: SplitMix64(seed),
        }
    }

    /// A random 64-bit value from the same generator (the heartbeat token).
    pub(super) fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// The next attempt's number and the wait before it.
    pub(super) fn next(&mut self, initial: Duration, max: Duration) -> (u32, Duration) {
        self.attempt = self.attempt.saturating_add(1);
        let exp = self.attempt.saturating_sub(1).min(30);
        let base = initial.saturating_mul(1u32 << exp).min(max);
        // Equal jitter: half fixed, half random, so retries spread out but
        // never collapse to zero.
        let half = base / 2;
        let jitter = half.mul_f64(self.rng.next_f64());
        (self.attempt, half + jitter)
    }

    /// Something worked: the next failure starts over.
    pub(super) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Small seeded generator for reconnect jitter (SplitMix64).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let mut b = Backoff::new(7);
        let delays: Vec<(u32, Duration)> = (0..6).map(|_| b.next(initial, max)).collect();
        for (i, &(attempt, delay)) in delays.iter().enumerate() {
            assert_eq!(attempt as usize, i + 1);
            let base = (initial * (1 << i)).min(max);
            assert!(delay >= base / 2 && delay <= base, "{delay:?} for {base:?}");
        }
        b.reset();
        let (attempt, delay) = b.next(initial, max);
        assert_eq!(attempt, 1);
        assert!(delay <= initial);
    }

    #[test]
    fn a_session_counts_its_handshake_down_to_the_group_phase() {
        let mut s = Session::new(2);
        assert!(!s.handshake_answered());
        assert!(s.handshake_answered());
        s.phase = Phase::Running;
        assert!(!s.handshake_answered());
        let link = Link::Up(s);
        assert!(link.is_up() && link.phase() == Some(Phase::Running));
        assert!(!Link::Connecting.is_up() && Link::Down.phase().is_none());
    }

    #[test]
    fn links_go_down_and_come_back_together() {
        let mut one = Links::connecting(false);
        assert_eq!(one.used().collect::<Vec<_>>(), [Conn::Control]);
        assert!(one.read_ready() && !one.has_read());
        one.set(Conn::Read, Link::Up(Session::new(0)));
        assert!(matches!(one.get(Conn::Read), Link::Down));

        let mut two = Links::connecting(true);
        assert_eq!(two.used().collect::<Vec<_>>(), [Conn::Control, Conn::Read]);
        two.set(Conn::Read, Link::Up(Session::new(1)));
        assert!(!two.read_ready(), "still in its handshake");
        two.session_mut(Conn::Read).unwrap().phase = Phase::Running;
        assert!(two.read_ready());
        // Only the read connection was open: only it is closed.
        two.set(Conn::Control, Link::Down);
        assert_eq!(two.all_down(), [Conn::Read]);
        assert!(matches!(two.get(Conn::Control), Link::Down));
        assert_eq!(two.all_connecting(), [Conn::Control, Conn::Read]);
        assert!(matches!(two.get(Conn::Read), Link::Connecting));
    }

    #[test]
    fn a_combined_read_is_ready_when_its_owner_says_so() {
        // A part reading through another part's connection opens none.
        let mut borrower = Links::connecting(true);
        borrower.combine_reads(false);
        assert_eq!(borrower.used().collect::<Vec<_>>(), [Conn::Control]);
        assert!(borrower.has_read() && !borrower.read_ready());
        assert!(borrower.set_combined_ready(true));
        assert!(!borrower.set_combined_ready(true), "no change");
        assert!(borrower.read_ready());
        // The part whose connection carries it still opens it.
        let mut owner = Links::connecting(true);
        owner.combine_reads(true);
        assert_eq!(
            owner.used().collect::<Vec<_>>(),
            [Conn::Control, Conn::Read]
        );
        owner.set(Conn::Read, Link::Up(Session::new(0)));
        owner.session_mut(Conn::Read).unwrap().phase = Phase::Running;
        assert!(!owner.read_ready(), "ready when the combined read says so");
    }
}
