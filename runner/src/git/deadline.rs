//! Deadlines for libgit2 network operations (GitRepository `spec.timeout`).
//!
//! libgit2 reads its sockets blocking; its only timeouts are process-wide socket options
//! (`git2::opts::set_server_timeout_in_milliseconds`, an `unsafe fn`, and this workspace
//! forbids `unsafe`), and a process-wide value cannot be each object's own timeout anyway.
//! A server that accepts the connection and then sends nothing would block a fetch or push,
//! and with it the cache clone's lock, forever. So every network operation runs through a
//! [`Relay`] it owns: a loopback TCP relay between libgit2 and the server, which at the
//! deadline shuts down every socket it holds. libgit2's blocked read then returns, the
//! operation fails, and the caller reports [`super::GitError::Timeout`]. libgit2's
//! progress callbacks check the deadline too (a fetch still receiving, or indexing, stops
//! there); the push progress callbacks cannot abort, so a push relies on the relay. An
//! aborted fetch leaves the cache clone as it was: libgit2 deletes the partial pack and
//! updates no ref (the tests run `git fsck` on it after a cut mid-pack).
//!
//! How libgit2 reaches the relay ([`Route`]):
//! - `https://`: the relay is libgit2's HTTP proxy and tunnels with `CONNECT`; TLS stays
//!   end to end, certificates are checked against the real host.
//! - `http://`, `git://`, `ssh://`: libgit2 is given the URL with the host replaced by the
//!   relay's loopback address, and the relay connects to the real host. (libgit2 1.9 has
//!   no proxy for git:// and ssh://, and with a proxy for plain http it connects to the
//!   server itself.) For http the relay puts the real `Host` header back into each request
//!   (it follows the request framing: `Content-Length` or chunked bodies). The SSH host key
//!   is still checked against the real host name (see [`super::auth`]); the git daemon
//!   sees `host=127.0.0.1:<port>` in its request (only matters to a daemon doing virtual
//!   hosting with `--interpolated-path`). An http redirect to another host is followed by
//!   libgit2 directly, outside the relay: only the callbacks bound it then.
//! - `file://`: no network, no relay; the deadline is checked in the progress callbacks.
//!
//! The relay's threads live only as long as the operation: dropping the [`Relay`] stops
//! them. It accepts loopback connections only while the operation runs.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs as _};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Flux's default `spec.timeout` of a GitRepository.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest request head the proxy side reads before giving up (libgit2 sends < 1 KiB).
const MAX_HEAD: usize = 16 * 1024;

/// How libgit2 reaches the server for one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Use this URL (`http://127.0.0.1:<port>`) as libgit2's HTTP proxy; the remote URL
    /// is unchanged.
    Proxy(String),
    /// Use this URL instead of the remote's (same scheme, user and path; the relay's host).
    Url(String),
    /// Local transport: use the remote URL as it is.
    Local,
}

/// Where the relay connects, per accepted connection.
#[derive(Debug, Clone)]
enum Mode {
    /// Always to this host and port (git://, ssh://).
    Direct(String, u16),
    /// Always to this host and port, with this `Host` header in every request (http://).
    Http(String, u16, String),
    /// Where the client's `CONNECT` request says (https://).
    Proxy,
}

#[derive(Default)]
struct State {
    /// Every socket of the relay (clones), shut down at the deadline or drop.
    sockets: Vec<TcpStream>,
    /// No more connections: the deadline passed or the operation ended.
    stopped: bool,
    /// The first failure to reach the server, for the operation's error message.
    upstream_error: Option<String>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking relay thread leaves consistent data (a list and flags).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a clone of `s` to shut down later; false (and `s` shut down) if already stopped.
    fn register(&self, s: &TcpStream) -> bool {
        let mut st = self.lock();
        if st.stopped {
            let _ = s.shutdown(Shutdown::Both);
            return false;
        }
        match s.try_clone() {
            Ok(c) => {
                st.sockets.push(c);
                true
            }
            Err(_) => {
                let _ = s.shutdown(Shutdown::Both);
                false
            }
        }
    }

    fn upstream_failed(&self, message: String) {
        let mut st = self.lock();
        if st.upstream_error.is_none() {
            st.upstream_error = Some(message);
        }
    }

    /// Stops accepting and shuts every socket down.
    fn stop(&self) {
        let mut st = self.lock();
        st.stopped = true;
        for s in st.sockets.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.wake.notify_all();
    }
}

/// The deadline of one network operation and the relay enforcing it.
pub(crate) struct Relay {
    route: Route,
    deadline: Instant,
    limit: Duration,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("route", &self.route)
            .field("limit", &self.limit)
            .finish()
    }
}

impl Relay {
    /// Starts the relay for one operation on `url`, expiring `limit` from now.
    pub(crate) fn start(url: &str, limit: Duration) -> std::io::Result<Self> {
        let deadline = Instant::now() + limit;
        let shared = Arc::new(Shared::default());
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let no_host = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("cannot find the host of '{url}'"),
            )
        };
        let mode = match scheme {
            "https" => Mode::Proxy,
            "git" | "ssh" | "http" => {
                let default = match scheme {
                    "git" => 9418,
                    "ssh" => 22,
                    _ => 80,
                };
                let parts = split_url(rest, default).ok_or_else(no_host)?;
                if scheme == "http" {
                    Mode::Http(parts.host, parts.port, parts.authority)
                } else {
                    Mode::Direct(parts.host, parts.port)
                }
            }
            _ => {
                return Ok(Self {
                    route: Route::Local,
                    deadline,
                    limit,
                    shared,
                });
            }
        };
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let route = match &mode {
            Mode::Proxy => Route::Proxy(format!("http://{addr}")),
            Mode::Direct(..) | Mode::Http(..) => {
                let parts = split_url(rest, 0).ok_or_else(no_host)?;
                Route::Url(format!("{scheme}://{}{addr}{}", parts.userinfo, parts.path))
            }
        };
        let accept_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("git-relay-accept".into())
            .spawn(move || accept_loop(listener, mode, accept_shared, deadline))?;
        let watch = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("git-relay-deadline".into())
            .spawn(move || supervise(&watch, addr, deadline))?;
        Ok(Self {
            route,
            deadline,
            limit,
            shared,
        })
    }

    /// How libgit2 must reach the server.
    pub(crate) fn route(&self) -> &Route {
        &self.route
    }

    /// The operation's time limit.
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether the deadline has passed (the relay has then cut, or is cutting, the sockets).
    /// Called from libgit2's progress callbacks, so it takes no lock.
    pub(crate) fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// The first failure to connect to the server, if any.
    pub(crate) fn upstream_error(&self) -> Option<String> {
        self.shared.lock().upstream_error.clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

/// Waits for the deadline or the end of the operation, then cuts every connection and
/// wakes the accept loop so it exits.
fn supervise(shared: &Shared, addr: SocketAddr, deadline: Instant) {
    let mut st = shared.lock();
    loop {
        if st.stopped {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        st = match shared.wake.wait_timeout(st, deadline - now) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
    }
    drop(st);
    shared.stop();
    // The accept loop blocks in accept(): one connection wakes it to see `stopped`.
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}

fn accept_loop(listener: TcpListener, mode: Mode, shared: Arc<Shared>, deadline: Instant) {
    for conn in listener.incoming() {
        if shared.lock().stopped {
            break;
        }
        let Ok(client) = conn else {
            // accept() failing (descriptor limits) would fail every further connection too.
            break;
        };
        let (mode, shared) = (mode.clone(), Arc::clone(&shared));
        let spawned = std::thread::Builder::new()
            .name("git-relay-conn".into())
            .spawn(move || serve(client, &mode, &shared, deadline));
        if spawned.is_err() {
            break;
        }
    }
}

/// One libgit2 connection: find the server, connect, then copy bytes both ways.
fn serve(client: TcpStream, mode: &Mode, shared: &Shared, deadline: Instant) {
    if !shared.register(&client) {
        return;
    }
    let _ = client.set_nodelay(true);
    let (host, port, preface, connect_reply) = match mode {
        Mode::Direct(h, p) | Mode::Http(h, p, _) => (h.clone(), *p, Vec::new(), false),
        Mode::Proxy => match read_proxy_request(&client) {
            Ok(r) => r,
            Err(message) => {
                shared.upstream_failed(message);
                let _ = (&client).write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
        },
    };
    let upstream = match connect(&host, port, deadline) {
        Ok(s) => s,
        Err(message) => {
            shared.upstream_failed(format!("failed to connect to {host}:{port}: {message}"));
            if matches!(mode, Mode::Proxy) {
                let _ = (&client).write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    };
    if !shared.register(&upstream) {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let _ = upstream.set_nodelay(true);
    if connect_reply {
        let _ = (&client).write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    }
    if !preface.is_empty() && (&upstream).write_all(&preface).is_err() {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let (Ok(down_from), Ok(down_to)) = (upstream.try_clone(), client.try_clone()) else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("git-relay-pump".into())
        .spawn(move || pump(down_from, down_to));
    if spawned.is_err() {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        return;
    }
    match mode {
        Mode::Http(_, _, host_header) => {
            let _ = copy_requests(&client, &upstream, host_header);
            let _ = upstream.shutdown(Shutdown::Write);
        }
        _ => pump(client, upstream),
    }
}

/// Copies HTTP/1.1 requests from `from` to `to`, replacing each `Host` header with
/// `host`; bodies pass as they are (`Content-Length` or chunked framing).
fn copy_requests(from: &TcpStream, mut to: &TcpStream, host: &str) -> std::io::Result<()> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut r = BufReader::new(from);
    loop {
        let mut head = Vec::new();
        let (mut length, mut chunked) = (0u64, false);
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line)? == 0 {
                return if head.is_empty() {
                    Ok(())
                } else {
                    Err(bad("request head cut short"))
                };
            }
            if head.len() + line.len() > MAX_HEAD {
                return Err(bad("request head too large"));
            }
            let end = line == b"\r\n" || line == b"\n";
            let text = String::from_utf8_lossy(&line);
            if let Some((name, value)) = text.split_once(':') {
                let (name, value) = (name.trim(), value.trim());
                if name.eq_ignore_ascii_case("host") {
                    line = format!("Host: {host}\r\n").into_bytes();
                } else if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().map_err(|_| bad("bad Content-Length"))?;
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.to_ascii_lowercase().contains("chunked");
                }
            }
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        to.write_all(&head)?;
        if chunked {
            loop {
                let mut size_line = Vec::new();
                if r.read_until(b'\n', &mut size_line)? == 0 {
                    return Err(bad("chunked body cut short"));
                }
                to.write_all(&size_line)?;
                let text = String::from_utf8_lossy(&size_line);
                let hex = text.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(hex, 16).map_err(|_| bad("bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to the blank line.
                    loop {
                        let mut t = Vec::new();
                        if r.read_until(b'\n', &mut t)? == 0 {
                            return Err(bad("chunked trailer cut short"));
                        }
                        to.write_all(&t)?;
                        if t == b"\r\n" || t == b"\n" {
                            break;
                        }
                    }
                    break;
                }
                // The chunk and its CRLF.
                let copied = std::io::copy(&mut (&mut r).take(size + 2), &mut to)?;
                if copied < size + 2 {
                    return Err(bad("chunk cut short"));
                }
            }
        } else if length > 0 {
            let copied = std::io::copy(&mut (&mut r).take(length), &mut to)?;
            if copied < length {
                return Err(bad("request body cut short"));
            }
        }
    }
}

/// Copies until end of stream or error, then passes the end on (half-close).
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?;
    let mut last = "no address".to_string();
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the deadline passed while connecting".into());
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Reads a proxy request head from libgit2: `CONNECT host:port` (answered by us once
/// connected) or an absolute-form request (`GET http://host[:port]/path`, passed on as
/// read). Returns (host, port, bytes to send to the server first, whether to answer 200).
fn read_proxy_request(mut client: &TcpStream) -> Result<(String, u16, Vec<u8>, bool), String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > MAX_HEAD {
            return Err("proxy request head too large".into());
        }
        let n = client
            .read(&mut chunk)
            .map_err(|e| format!("reading the request: {e}"))?;
        if n == 0 {
            return Err("connection closed before a request".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line_end = buf
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(buf.len());
    let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
    let (host, port, connect) = parse_proxy_line(&line)?;
    let preface = if connect { Vec::new() } else { buf };
    Ok((host, port, preface, connect))
}

/// `CONNECT host:port HTTP/1.1` or `<METHOD> http://host[:port]/... HTTP/1.1` to
/// (host, port, is CONNECT).
fn parse_proxy_line(line: &str) -> Result<(String, u16, bool), String> {
    let mut words = line.split(' ');
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Err(format!("unexpected proxy request '{line}'"));
    };
    if method == "CONNECT" {
        let (host, port) = host_port(target, 443)
            .ok_or_else(|| format!("unexpected CONNECT target '{target}'"))?;
        return Ok((host, port, true));
    }
    let rest = target
        .strip_prefix("http://")
        .ok_or_else(|| format!("unexpected proxy request target '{target}'"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = host_port(authority, 80)
        .ok_or_else(|| format!("unexpected proxy request target '{target}'"))?;
    Ok((host, port, false))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(s: &str, default: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        (host.to_string(), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (s.to_string(), default),
        }
    };
    (!host.is_empty()).then_some((host, port))
}

struct UrlParts {
    /// `user@` or empty.
    userinfo: String,
    /// `host[:port]` as written (the HTTP `Host` header).
    authority: String,
    host: String,
    port: u16,
    /// From the first `/` after the authority (or empty).
    path: String,
}

/// Splits what follows `scheme://`.
fn split_url(rest: &str, default_port: u16) -> Option<UrlParts> {
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let (host, port) = host_port(hostport, default_port)?;
    Some(UrlParts {
        userinfo,
        authority: hostport.to_string(),
        host,
        port,
        path: path.to_string(),
    })
}

/// The host a URL names (for the SSH host key check when libgit2 sees the relay's).
pub(crate) fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    split_url(rest, 0).map(|p| p.host)
}

/// A time limit as the user would write it: `60s`, `1500ms`.
pub fn show_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn urls_split_into_user_host_port_path() {
        let p = split_url("git@example.com:2222/org/repo.git", 22).unwrap();
        assert_eq!(
            (
                p.userinfo.as_str(),
                p.host.as_str(),
                p.port,
                p.path.as_str()
            ),
            ("git@", "example.com", 2222, "/org/repo.git")
        );
        let p = split_url("example.com/repo", 9418).unwrap();
        assert_eq!((p.host.as_str(), p.port), ("example.com", 9418));
        let p = split_url("u@[::1]:29418/r", 22).unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.path.as_str()),
            ("::1", 29418, "/r")
        );
        assert!(split_url("host:notaport/r", 22).is_none());
        assert_eq!(
            url_host("ssh://git@github.com/a/b").as_deref(),
            Some("github.com")
        );
    }

    #[test]
    fn proxy_request_lines() {
        assert_eq!(
            parse_proxy_line("CONNECT github.com:443 HTTP/1.1").unwrap(),
            ("github.com".into(), 443, true)
        );
        assert_eq!(
            parse_proxy_line("GET http://127.0.0.1:8080/r.git/info/refs?service=x HTTP/1.1")
                .unwrap(),
            ("127.0.0.1".into(), 8080, false)
        );
        assert_eq!(
            parse_proxy_line("POST http://git.example/r.git/git-upload-pack HTTP/1.1").unwrap(),
            ("git.example".into(), 80, false)
        );
        assert!(parse_proxy_line("GET /relative HTTP/1.1").is_err());
    }

    #[test]
    fn routes_per_scheme() {
        let r = Relay::start(
            "ssh://git@example.com:2222/org/r.git",
            Duration::from_secs(5),
        )
        .unwrap();
        let Route::Url(u) = r.route().clone() else {
            panic!("{:?}", r.route())
        };
        assert!(
            u.starts_with("ssh://git@127.0.0.1:") && u.ends_with("/org/r.git"),
            "{u}"
        );
        let r = Relay::start("https://example.com/r.git", Duration::from_secs(5)).unwrap();
        assert!(matches!(r.route(), Route::Proxy(p) if p.starts_with("http://127.0.0.1:")));
        let r = Relay::start("http://example.com:8080/r.git", Duration::from_secs(5)).unwrap();
        assert!(matches!(r.route(), Route::Url(u) if u.starts_with("http://127.0.0.1:")));
        let r = Relay::start("file:///tmp/r.git", Duration::from_secs(5)).unwrap();
        assert_eq!(r.route(), &Route::Local);
    }

    #[test]
    fn a_silent_server_is_cut_at_the_deadline() {
        // A server that accepts and never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let hold = std::thread::spawn(move || silent.accept().map(|(s, _)| s));
        let relay = Relay::start(
            &format!("git://127.0.0.1:{port}/r.git"),
            Duration::from_millis(300),
        )
        .unwrap();
        let Route::Url(u) = relay.route().clone() else {
            panic!()
        };
        let addr = u
            .trim_start_matches("git://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"0000").unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 16];
        // Blocks until the relay cuts the connection at the deadline: EOF or reset.
        let n = s.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0);
        let waited = start.elapsed();
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert!(relay.expired());
        drop(hold);
    }

    /// Accepts one connection and returns everything it receives (until the peer closes).
    fn recorder() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            all
        });
        (port, h)
    }

    fn relay_addr(route: &Route) -> String {
        let (Route::Url(u) | Route::Proxy(u)) = route else {
            panic!("{route:?}")
        };
        u.split("://")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn http_requests_get_the_real_host_back_with_bodies_intact() {
        let (port, seen) = recorder();
        let relay = Relay::start(
            &format!("http://localhost:{port}/r.git"),
            Duration::from_secs(10),
        )
        .unwrap();
        let mut s = TcpStream::connect(relay_addr(relay.route())).unwrap();
        let sent = b"GET /r.git/info/refs HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n\
POST /r.git/git-upload-pack HTTP/1.1\r\nhost: 127.0.0.1:1\r\nContent-Length: 5\r\n\r\nHost:\
POST /x HTTP/1.1\r\nHost: 127.0.0.1:1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab\n\r\n0\r\n\r\n";
        s.write_all(sent).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let got = String::from_utf8(seen.join().unwrap()).unwrap();
        let want = String::from_utf8_lossy(sent).replace(
            "ost: 127.0.0.1:1\r\n",
            &format!("ost: localhost:{port}\r\n"),
        );
        let want = want.replace("host: localhost", "Host: localhost");
        assert_eq!(got, want);
    }

    #[test]
    fn connect_tunnels_to_the_named_host() {
        let (port, seen) = recorder();
        let relay = Relay::start("https://example.invalid/r.git", Duration::from_secs(10)).unwrap();
        let mut s = TcpStream::connect(relay_addr(relay.route())).unwrap();
        s.write_all(format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut answer = [0u8; 39];
        s.read_exact(&mut answer).unwrap();
        assert_eq!(&answer[..], b"HTTP/1.1 200 Connection established\r\n\r\n");
        s.write_all(b"tls bytes").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(seen.join().unwrap(), b"tls bytes");
    }

    #[test]
    fn a_refused_connection_is_remembered_for_the_error() {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let relay = Relay::start(
            &format!("git://127.0.0.1:{port}/r.git"),
            Duration::from_secs(10),
        )
        .unwrap();
        let mut s = TcpStream::connect(relay_addr(relay.route())).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
        let e = relay.upstream_error().unwrap();
        assert!(
            e.starts_with(&format!("failed to connect to 127.0.0.1:{port}: ")),
            "{e}"
        );
        assert!(!relay.expired());
    }

    #[test]
    fn durations_show_as_written() {
        assert_eq!(show_duration(Duration::from_secs(60)), "60s");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
    }
}
