//! The runtime-independent half of every adapter's consumer builder: where
//! to connect, the core options, the failure callback, and the `info()`
//! record.

use std::sync::Arc;

use crate::config::{ConsumerConfig, ConsumerConfigBuilder};
use crate::consumer::{ConsumerInfo, DeadLettered, MultiConsumer};
use crate::error::{ConfigError, Error};
use crate::sentinel::{parse_target, Target};
use crate::url::ServerAddr;

/// Called for every dead-lettered entry (the failure callback).
pub type DeadLetterHook = Arc<dyn Fn(&DeadLettered) + Send + Sync>;

/// What an adapter's builder collects before `build()`.
#[derive(Clone)]
pub struct ConsumerSetup {
    addr: Result<ServerAddr, ConfigError>,
    /// Whether the URL said `rediss://` (`None`: built from host and port).
    url_tls: Option<bool>,
    config: ConsumerConfigBuilder,
    on_dead_letter: Option<DeadLetterHook>,
}

/// A checked setup, ready to run.
#[derive(Clone)]
pub struct PreparedConsumer {
    /// Where to connect.
    pub addr: ServerAddr,
    /// The validated options.
    pub config: ConsumerConfig,
    /// The record `info()` reports, kept current with [`ConsumerInfo::update`].
    pub info: ConsumerInfo,
    /// The failure callback, if any.
    pub on_dead_letter: Option<DeadLetterHook>,
}

impl ConsumerSetup {
    /// From a `redis[s]://[user:password@]host[:port][/db]` URL, or a
    /// `redis[s]+sentinel://` or `redis[s]+cluster://` one (see
    /// [`parse_target`]); a bad URL is
    /// reported by [`prepare`](Self::prepare).
    pub fn from_url(
        url: &str,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
    ) -> Self {
        let parsed = parse_target(url);
        let mut config = ConsumerConfig::builder(stream, group, consumer);
        let mut url_tls = None;
        if let Ok((target, opts)) = &parsed {
            url_tls = Some(opts.tls.is_some());
            config = config.connect_options(opts.clone());
            match target {
                Target::Sentinel(sentinel) => config = config.sentinel(sentinel.clone()),
                Target::Cluster(cluster) => config = config.cluster(cluster.clone()),
                Target::Server(_) => {}
            }
        }
        ConsumerSetup {
            // With sentinels or a cluster the core says where each
            // connection goes; this is only a fallback.
            addr: parsed.map(|(target, _)| match target {
                Target::Server(addr) => addr,
                Target::Sentinel(s) => s.sentinels[0].clone(),
                Target::Cluster(c) => c.seeds[0].clone(),
            }),
            url_tls,
            config,
            on_dead_letter: None,
        }
    }

    /// From host and port (credentials through `connect_options`).
    pub fn from_host(
        host: &str,
        port: u16,
        stream: impl AsRef<[u8]>,
        group: impl AsRef<[u8]>,
        consumer: impl AsRef<[u8]>,
    ) -> Self {
        ConsumerSetup {
            addr: Ok(ServerAddr {
                host: host.to_owned(),
                port,
            }),
            url_tls: None,
            config: ConsumerConfig::builder(stream, group, consumer),
            on_dead_letter: None,
        }
    }

    /// Changes core options.
    pub fn configure(
        mut self,
        f: impl FnOnce(ConsumerConfigBuilder) -> ConsumerConfigBuilder,
    ) -> Self {
        self.config = f(self.config);
        self
    }

    /// Sets the failure callback, called for every dead-lettered entry.
    pub fn on_dead_letter(mut self, f: impl Fn(&DeadLettered) + Send + Sync + 'static) -> Self {
        self.on_dead_letter = Some(Arc::new(f));
        self
    }

    /// Checks the URL and every option, for a handler of type `handler`.
    /// TLS settings with a `redis://` URL, or a `rediss://` URL whose TLS
    /// `connect_options` switched off, are refused: TLS is never silently
    /// off, nor on against what the URL says.
    pub fn prepare(self, handler: &'static str) -> Result<PreparedConsumer, Error> {
        let addr = self.addr?;
        let config = self.config.build()?;
        let tls = config.connect_options().tls.is_some();
        match self.url_tls {
            Some(false) if tls => {
                return Err(ConfigError::new(
                    "tls",
                    "TLS options are set but the URL says redis://; use rediss:// for TLS",
                )
                .into())
            }
            Some(true) if !tls => {
                return Err(ConfigError::new(
                    "tls",
                    "the URL says rediss:// but connect_options have no TLS settings \
                     (set ConnectOptions::tls, or use redis:// for plain TCP)",
                )
                .into())
            }
            _ => {}
        }
        let info = ConsumerInfo::new(&config, handler);
        Ok(PreparedConsumer {
            addr,
            config,
            info,
            on_dead_letter: self.on_dead_letter,
        })
    }
}

impl std::fmt::Debug for ConsumerSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerSetup")
            .field("addr", &self.addr)
            .field("url_tls", &self.url_tls)
            .field("config", &self.config)
            .field("on_dead_letter", &self.on_dead_letter.is_some())
            .finish()
    }
}

impl std::fmt::Debug for PreparedConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedConsumer")
            .field("addr", &self.addr)
            .field("config", &self.config)
            .field("info", &self.info)
            .field("on_dead_letter", &self.on_dead_letter.is_some())
            .finish()
    }
}

impl ConsumerInfo {
    /// Copies the consumer's counters, gauges and connection state.
    pub fn update(&mut self, consumer: &MultiConsumer) {
        self.stats = consumer.stats();
        self.connected = consumer.is_connected();
        self.in_flight_batches = consumer.in_flight();
        self.held_entries = consumer.held_entries();
        self.group_counts = consumer.group_counts();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConnectOptions;
    use crate::tls::TlsOptions;

    fn prepared(setup: ConsumerSetup) -> Result<PreparedConsumer, Error> {
        setup.prepare("h")
    }

    #[test]
    fn tls_follows_the_url_and_never_contradicts_it() {
        let url = |u: &str| ConsumerSetup::from_url(u, "s", "g", "c");
        let p = prepared(url("rediss://h:1")).unwrap();
        assert_eq!(p.config.connect_options().tls, Some(TlsOptions::default()));
        let custom = TlsOptions::new().ca_cert_file("ca.pem");
        let p = prepared(url("rediss://h:1").configure(|c| c.tls(custom.clone()))).unwrap();
        assert_eq!(p.config.connect_options().tls, Some(custom.clone()));
        let e = prepared(url("redis://h:1").configure(|c| c.tls(custom.clone()))).unwrap_err();
        assert!(
            matches!(e, Error::Config(ref c) if c.option == "tls"),
            "{e}"
        );
        let plain = ConnectOptions::default();
        let e = prepared(url("rediss://h:1").configure(|c| c.connect_options(plain))).unwrap_err();
        assert!(
            matches!(e, Error::Config(ref c) if c.option == "tls"),
            "{e}"
        );
        let host = ConsumerSetup::from_host("h", 1, "s", "g", "c");
        let p = prepared(host.configure(|c| c.tls(custom.clone()))).unwrap();
        assert_eq!(p.config.connect_options().tls, Some(custom));
        assert!(prepared(url("redis://h:1"))
            .unwrap()
            .config
            .connect_options()
            .tls
            .is_none());
    }
}
