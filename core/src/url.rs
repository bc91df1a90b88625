//! `redis://` and `rediss://` `[user[:password]@]host[:port][/db][?protocol=resp3]` URLs.

use crate::config::ConnectOptions;
use crate::error::ConfigError;
use crate::tls::TlsOptions;

/// Where to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAddr {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port, 6379 unless given.
    pub port: u16,
}

impl ServerAddr {
    /// `host:port`, bracketing IPv6 addresses, for `connect` calls.
    pub fn to_socket_string(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses a `redis://` or `rediss://` URL into an address and connection
/// options.
///
/// `rediss://` (and `valkeys://`) turn TLS on with the default
/// [`TlsOptions`] (the server verified against the Mozilla roots for the
/// URL's host); set others with the builder's `tls(..)`. User name and
/// password are percent-decoded (`s%40cret` is `s@cret`). `unix://` is
/// rejected with a clear error. Errors never repeat the credentials: a URL
/// they quote has its user info (everything up to the last `@`) and its
/// query replaced by `***`.
///
/// ```
/// let (addr, opts) = xgroup_core::parse_url("redis://app:s%40cret@10.0.0.5:6380/2").unwrap();
/// assert_eq!((addr.host.as_str(), addr.port), ("10.0.0.5", 6380));
/// assert_eq!(opts.username.as_deref(), Some("app"));
/// assert_eq!(opts.password.as_deref(), Some("s@cret"));
/// assert_eq!(opts.db, 2);
/// assert!(opts.tls.is_none());
/// let (_, opts) = xgroup_core::parse_url("rediss://app:pw@redis.internal:6380").unwrap();
/// assert!(opts.tls.is_some());
/// ```
pub fn parse_url(input: &str) -> Result<(ServerAddr, ConnectOptions), ConfigError> {
    let bad = |reason: String| ConfigError::new("url", reason);
    let url = url::Url::parse(input)
        .map_err(|e| bad(format!("{:?} is not a URL: {e}", redacted(input))))?;
    let tls = match url.scheme() {
        "redis" | "valkey" => None,
        "rediss" | "valkeys" => Some(TlsOptions::default()),
        sentinel if sentinel.ends_with("+sentinel") => {
            return Err(bad(format!(
                "{sentinel}:// names a master through its sentinels: pass it where a \
                 consumer or connection is built (parse_target), not to parse_url"
            )))
        }
        other => {
            return Err(bad(format!(
                "scheme {other:?} is not supported; use redis:// (or rediss:// for TLS), redis+sentinel:// or redis+cluster://"
            )))
        }
    };
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(bad(format!("{:?} has no host", redacted(input)))),
    };
    let port = url.port().unwrap_or(6379);
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| {
                bad("user name or password is not valid UTF-8 after percent-decoding".into())
            })
    };
    let username = match url.username() {
        "" => None,
        u => Some(decode(u)?),
    };
    let password = url.password().map(decode).transpose()?;
    if username.is_some() && password.is_none() {
        return Err(bad(
            "a user name needs a password (redis://user:password@host)".into(),
        ));
    }
    let db = match url.path().trim_start_matches('/') {
        "" => 0,
        // Not quoted: a password with an unencoded `/` ends up here.
        path => path
            .parse::<u32>()
            .map_err(|_| bad("the path must be a database number (redis://host:port/2)".into()))?,
    };
    let mut opts = ConnectOptions {
        username,
        password,
        db,
        tls,
        ..ConnectOptions::default()
    };
    for (key, value) in url.query_pairs() {
        match (&*key, &*value) {
            ("protocol", "resp3" | "3") => opts.resp3 = true,
            ("protocol", "resp2" | "2") => opts.resp3 = false,
            ("client_name" | "name", name) => opts.client_name = Some(name.to_owned()),
            // Not the value: it may be a secret (`?password=...`).
            (k, _) => return Err(bad(format!("unknown URL parameter {k:?}"))),
        }
    }
    Ok((ServerAddr { host, port }, opts))
}

/// `input` for an error message: the user info (up to the last `@`, so a
/// password holding `@`, `/` or `?` is hidden too) and the query (it may
/// carry secrets) as `***`.
pub(crate) fn redacted(input: &str) -> String {
    let (scheme, rest) = match input.find("://") {
        Some(i) => input.split_at(i + 3),
        None => ("", input),
    };
    let rest = match rest.rfind('@') {
        Some(at) => format!("***{}", &rest[at..]),
        None => rest.to_owned(),
    };
    match rest.split_once('?') {
        Some((before, _)) => format!("{scheme}{before}?***"),
        None => format!("{scheme}{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let (a, o) = parse_url("redis://localhost").unwrap();
        assert_eq!(
            a,
            ServerAddr {
                host: "localhost".into(),
                port: 6379
            }
        );
        assert_eq!(o, ConnectOptions::default());
        let (a, o) = parse_url("redis://:pw@127.0.0.1:7000/3?protocol=resp3").unwrap();
        assert_eq!(a.to_socket_string(), "127.0.0.1:7000");
        assert_eq!(o.password.as_deref(), Some("pw"));
        assert_eq!(o.username, None);
        assert_eq!(o.db, 3);
        assert!(o.resp3);
        let (a, _) = parse_url("redis://[::1]:6380").unwrap();
        assert_eq!(a.to_socket_string(), "[::1]:6380");
    }

    #[test]
    fn rediss_turns_tls_on_with_the_login_decoded() {
        let (a, o) = parse_url("rediss://app:p%40ss%3Aw%2Frd@redis.internal:6380/1").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("redis.internal", 6380));
        assert_eq!(o.tls, Some(TlsOptions::default()));
        assert_eq!(o.username.as_deref(), Some("app"));
        assert_eq!(o.password.as_deref(), Some("p@ss:w/rd"));
        assert_eq!(o.db, 1);
        let (_, o) = parse_url("valkeys://h").unwrap();
        assert!(o.tls.is_some());
        let (_, o) = parse_url("redis://h").unwrap();
        assert!(o.tls.is_none());
    }

    #[test]
    fn rejects_bad_urls_clearly() {
        for bad in [
            "localhost:6379",
            "http://localhost",
            "unix:///tmp/redis.sock",
            "rediss://",
            "redis://",
            "redis://localhost/x",
            "redis://user@localhost",
            "redis://localhost?foo=bar",
            "redis://localhost:99999",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert_eq!(e.option, "url", "{bad}");
            assert!(!e.reason.is_empty());
        }
    }

    #[test]
    fn errors_and_debug_output_never_show_the_password() {
        const SECRET: &str = "pw-7f3a9c";
        for bad in [
            "redis://user:pw-7f3a9c@:6379",
            "redis://user:pw-7f3a9c@host:notaport",
            "redis://user:pw-7f3a9c@[::1",
            "redis://:pw-7f3a9c@host/notadb",
            "redis://:pw-7f3a9c@host?foo=bar",
            "redis://host?password=pw-7f3a9c",
            "rediss://user:pw-7f3a9c@host/notadb",
            "rediss://user:pw-7f3a9c@host?tls_key=pw-7f3a9c",
            "http://user:pw-7f3a9c@host",
            "user:pw-7f3a9c@host:6379",
            "redis://user:pw-7f3a9c%FF@host",
            "redis://user:p@ss/pw-7f3a9c?x@host",
            "redis://user:pw-7f3a9c@@host:99999",
        ] {
            let e = parse_url(bad).expect_err(bad);
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains(SECRET), "{bad} gave {shown}");
            }
        }
        let (_, opts) = parse_url("redis://user:pw-7f3a9c@host/2").unwrap();
        assert_eq!(opts.password.as_deref(), Some(SECRET));
        let shown = format!("{opts:?}");
        assert!(
            !shown.contains(SECRET) && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn quoted_urls_keep_what_helps_and_hide_the_rest() {
        assert_eq!(redacted("redis://u:p@host:1/2"), "redis://***@host:1/2");
        assert_eq!(redacted("u:p@@host"), "***@host");
        assert_eq!(redacted("redis://host?password=x"), "redis://host?***");
        assert_eq!(redacted("redis://host:1"), "redis://host:1");
    }
}
