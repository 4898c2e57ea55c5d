//! A fault-injecting HTTP/1.1 proxy for the registry tests: it sits between `hoist`
//! and a real registry (`registry.rs`) and, following a [`FaultPlan`], answers some
//! requests itself (a 500 with an error envelope, a 429 with `Retry-After`…), drops
//! the connection part-way through a request body (an upload cut off), or forwards a
//! request and cuts the registry's answer short (a download cut off). Everything
//! else it forwards untouched.
//!
//! Std only: one thread per connection, one request per connection. Every request is
//! forwarded on a fresh upstream connection with `Connection: close`, and every answer
//! goes back with `Connection: close`, so there is no keep-alive to track and a request
//! ends where its `Content-Length` (or its last chunk) says. The registry builds the
//! absolute `Location:` URLs of upload sessions from the `Host` header, which is
//! forwarded as the client sent it; a `Location` naming the registry itself is
//! rewritten to the proxy as well, so an upload never bypasses the proxy.
//!
//! Every socket has a read and a write timeout, so no connection thread outlives a
//! stuck peer by more than [`IO_LIMIT`].

use std::fmt::{self, Write as _};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest wait on any socket read or write.
const IO_LIMIT: Duration = Duration::from_secs(30);
/// How much of a request target the log shows.
const PATH_SHOWN: usize = 120;
/// Longest request or response head accepted.
const HEAD_LIMIT: usize = 64 * 1024;

/// What to do to a matching request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this instead of forwarding (the request body is read first, so the
    /// client sees the answer, not a reset).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read the request head and this many bytes of its body (at most half of it, so
    /// the cut is always mid-body; a few more may have arrived with the head), then
    /// close the socket with the rest unread: the kernel answers the client with a
    /// reset. Nothing reaches the registry.
    ResetRequestBody { after: usize },
    /// Forward the request, then send the registry's answer with only this many bytes
    /// of its body (at most half of it) and close the connection.
    CutResponseBody { after: usize },
    /// Read the whole request, then neither answer nor close for `hold` (a registry
    /// that has hung); then close without answering.
    Stall { hold: Duration },
    /// Forward the request, then send the registry's answer head at once and its body
    /// one byte per `every` (a registry that trickles: never silent for long, never
    /// done), until the client hangs up or the body or [`IO_LIMIT`] ends.
    Trickle { every: Duration },
}

impl Fault {
    /// An answer with `status` and no body.
    pub fn status(status: u16) -> Fault {
        Fault::Respond {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// An answer with `status` and a distribution error envelope
    /// `{"errors":[{"code":CODE,"message":"injected"}]}`.
    pub fn envelope(status: u16, code: &str) -> Fault {
        Fault::Respond {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: format!(
                r#"{{"errors":[{{"code":"{code}","message":"injected","detail":null}}]}}"#
            )
            .into_bytes(),
        }
    }

    /// Adds a header to a [`Fault::Respond`].
    pub fn with_header(mut self, name: &str, value: &str) -> Fault {
        match &mut self {
            Fault::Respond { headers, .. } => headers.push((name.into(), value.into())),
            other => panic!("with_header on {other:?}"),
        }
        self
    }
}

/// Which requests a rule applies to: an exact method and a substring of the target.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: String,
    pub path_contains: String,
    /// How many matching requests get the fault (the first ones); `None`: all.
    pub times: Option<usize>,
    pub fault: Fault,
}

/// The faults to inject, as rules tried in order: a request gets the fault of the
/// first rule that matches it and has not used up its `times`.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    rules: Vec<Rule>,
}

impl FaultPlan {
    /// A plan that forwards everything untouched.
    pub fn new() -> FaultPlan {
        FaultPlan::default()
    }

    /// The first `times` requests with this method and a target containing `path`
    /// get `fault`.
    pub fn first(mut self, times: usize, method: &str, path: &str, fault: Fault) -> FaultPlan {
        self.rules.push(Rule {
            method: method.into(),
            path_contains: path.into(),
            times: Some(times),
            fault,
        });
        self
    }

    /// Every request with this method and a target containing `path` gets `fault`.
    pub fn always(mut self, method: &str, path: &str, fault: Fault) -> FaultPlan {
        self.rules.push(Rule {
            method: method.into(),
            path_contains: path.into(),
            times: None,
            fault,
        });
        self
    }
}

/// What became of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded; the registry answered this status and the client got all of it.
    Forwarded(u16),
    /// Answered by the proxy with this status (rule index).
    Injected { rule: usize, status: u16 },
    /// The connection was dropped after this many request-body bytes (rule index).
    Reset { rule: usize, body_bytes: usize },
    /// Forwarded (the registry answered this status) and the answer was cut after
    /// this many body bytes (rule index).
    Cut {
        rule: usize,
        status: u16,
        body_bytes: usize,
    },
    /// Forwarded, and this many body bytes trickled before the client hung up (or
    /// the body or the time ended) (rule index).
    Trickled { rule: usize, body_bytes: usize },
    /// Held without an answer for this long, then closed (rule index); the client
    /// hung up first if `client_gone`.
    Stalled {
        rule: usize,
        held: Duration,
        client_gone: bool,
    },
    /// The proxy could not reach the registry or read its answer (answered 502).
    UpstreamError(String),
}

/// One request the proxy saw, in the order their heads arrived.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    /// The request target: path and query.
    pub path: String,
    /// The request's declared body length (`Content-Length`), if any.
    pub content_length: Option<usize>,
    /// The request's `Authorization` header, if it had one.
    pub authorization: Option<String>,
    /// When the request head arrived.
    pub at: Instant,
    /// When the proxy began writing the registry's forwarded answer: the client cannot
    /// have its answer before, so a request it sends because this one ended arrives
    /// after (for counting requests at once without the proxy's own lag).
    pub answering: Option<Instant>,
    /// When the proxy finished with the request (answered, cut or dropped it).
    pub done: Option<Instant>,
    pub outcome: Option<Outcome>,
}

impl Exchange {
    /// The path without its query.
    pub fn route(&self) -> &str {
        self.path.split_once('?').map_or(&self.path, |(r, _)| r)
    }

    /// Whether a fault was applied to this request.
    pub fn faulted(&self) -> bool {
        matches!(
            self.outcome,
            Some(
                Outcome::Injected { .. }
                    | Outcome::Trickled { .. }
                    | Outcome::Reset { .. }
                    | Outcome::Cut { .. }
                    | Outcome::Stalled { .. }
            )
        )
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Upload session targets carry a long `_state` query: shorten it.
        let shown = match self.path.char_indices().nth(PATH_SHOWN) {
            Some((end, _)) => format!("{}…", &self.path[..end]),
            None => self.path.clone(),
        };
        write!(f, "{} {shown}", self.method)?;
        if let Some(length) = self.content_length {
            write!(f, " ({length} bytes)")?;
        }
        match &self.outcome {
            Some(outcome) => write!(f, " -> {outcome:?}"),
            None => write!(f, " -> (in progress)"),
        }
    }
}

struct RuleState {
    rule: Rule,
    used: usize,
}

struct Shared {
    upstream: SocketAddr,
    /// The proxy's own `host:port`, for `Location` rewriting.
    me: String,
    rules: Mutex<Vec<RuleState>>,
    log: Mutex<Vec<Exchange>>,
}

/// A running proxy; stops accepting when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not hide the log from the test.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FaultProxy {
    /// Starts a proxy on a free 127.0.0.1 port forwarding to `upstream`.
    pub fn start(upstream: SocketAddr, plan: FaultPlan) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fault proxy");
        let addr = listener.local_addr().expect("the fault proxy's address");
        let shared = Arc::new(Shared {
            upstream,
            me: addr.to_string(),
            rules: Mutex::new(
                plan.rules
                    .into_iter()
                    .map(|rule| RuleState { rule, used: 0 })
                    .collect(),
            ),
            log: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("fault-proxy".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let shared = Arc::clone(&shared);
                        let _ = std::thread::Builder::new()
                            .name("fault-proxy-conn".into())
                            .spawn(move || serve(&shared, stream));
                    }
                })
                .expect("spawning the fault proxy")
        };
        FaultProxy {
            addr,
            shared,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:PORT`, the registry part of references through the proxy.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `127.0.0.1:PORT/<repo>` (plus `:tag` if the caller appends one).
    pub fn reference(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host())
    }

    /// Every request seen so far, in arrival order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.shared.log).clone()
    }

    /// How many requests got a fault.
    pub fn faults_injected(&self) -> usize {
        self.exchanges().iter().filter(|e| e.faulted()).count()
    }

    /// How many requests rule `index` (in plan order) applied its fault to.
    pub fn rule_hits(&self, index: usize) -> usize {
        lock(&self.shared.rules)[index].used
    }

    /// The log as text, one request a line, for assertion messages.
    pub fn log_text(&self) -> String {
        let log = self.exchanges();
        let Some(start) = log.first().map(|e| e.at) else {
            return "(no requests)".into();
        };
        log.iter()
            .map(|e| format!("{:>8.3}s {e}", e.at.duration_since(start).as_secs_f64()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// A parsed HTTP message head.
struct Head {
    /// The first line, without CRLF.
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> Option<usize> {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    /// The head as bytes, with `Connection: close` in place of any connection
    /// headers and every `(name, value)` of `replace` set.
    fn serialise(&self, replace: &[(&str, String)]) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start);
        for (name, value) in &self.headers {
            let lower = name.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "connection" | "keep-alive" | "proxy-connection"
            ) || replace.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                continue;
            }
            let _ = write!(out, "{name}: {value}\r\n");
        }
        for (name, value) in replace {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

/// Reads a message head, and not a byte more (it peeks before it reads), so that what
/// follows is still in the socket: a reset after `after` body bytes is then exact.
/// Returns the head and the body bytes read with it (always none).
fn read_head(stream: &mut TcpStream) -> std::io::Result<(Head, Vec<u8>)> {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if buffer.len() > HEAD_LIMIT {
            return Err(invalid(format!("no end of head in {HEAD_LIMIT} bytes")));
        }
        let n = stream.peek(&mut chunk)?;
        if n == 0 {
            return Err(invalid(format!(
                "connection closed after {} bytes of head",
                buffer.len()
            )));
        }
        // The terminator may straddle what we hold and what we peeked.
        let kept = buffer.len().min(3);
        let mut probe = buffer[buffer.len() - kept..].to_vec();
        probe.extend_from_slice(&chunk[..n]);
        let take = probe
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(n, |at| at + 4 - kept);
        stream.read_exact(&mut chunk[..take])?;
        buffer.extend_from_slice(&chunk[..take]);
        if buffer.ends_with(b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buffer[..buffer.len() - 4]).into_owned();
            let mut lines = text.split("\r\n");
            let start = lines.next().unwrap_or_default().to_owned();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .collect();
            return Ok((Head { start, headers }, Vec::new()));
        }
    }
}

/// Reads a request body (Content-Length or chunked, kept as sent) after `already`.
fn read_body(stream: &mut TcpStream, head: &Head, mut body: Vec<u8>) -> std::io::Result<Vec<u8>> {
    if head.chunked() {
        // Read until the terminating zero-size chunk and its blank line.
        let mut chunk = vec![0u8; 65536];
        while !chunked_complete(&body)? {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(invalid("connection closed inside a chunked body".into()));
            }
            body.extend_from_slice(&chunk[..n]);
        }
        return Ok(body);
    }
    let length = head.content_length().unwrap_or(0);
    read_to_length(stream, &mut body, length)?;
    body.truncate(length);
    Ok(body)
}

fn read_to_length(
    stream: &mut TcpStream,
    body: &mut Vec<u8>,
    length: usize,
) -> std::io::Result<()> {
    let mut chunk = vec![0u8; 65536];
    while body.len() < length {
        let want = (length - body.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..want])?;
        if n == 0 {
            return Err(invalid(format!(
                "connection closed after {} of {length} body bytes",
                body.len()
            )));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Whether `raw` holds a complete chunked body.
fn chunked_complete(raw: &[u8]) -> std::io::Result<bool> {
    let mut at = 0;
    loop {
        let Some(eol) = raw[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(false);
        };
        let line = String::from_utf8_lossy(&raw[at..at + eol]).into_owned();
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
        at += eol + 2;
        if size == 0 {
            // Trailers (none expected), then the final CRLF.
            return Ok(raw[at..].windows(2).any(|w| w == b"\r\n"));
        }
        if raw.len() < at + size + 2 {
            return Ok(false);
        }
        at += size + 2;
    }
}

/// The status code of a response head.
fn status_of(head: &Head) -> u16 {
    head.start
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    }
}

/// Serves one connection: one request, one answer, then close.
fn serve(shared: &Shared, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(IO_LIMIT));
    let _ = client.set_write_timeout(Some(IO_LIMIT));
    let Ok((head, early_body)) = read_head(&mut client) else {
        // The drop's wake-up connection, or a client that gave up: nothing to log.
        return;
    };
    let mut parts = head.start.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();

    // Pick the rule and log the request under the locks, so concurrent requests
    // count against a rule's budget one at a time.
    let (index, fault) = {
        let mut rules = lock(&shared.rules);
        let chosen = rules.iter_mut().enumerate().find(|(_, state)| {
            state.rule.method == method
                && path.contains(&state.rule.path_contains)
                && state.rule.times.is_none_or(|times| state.used < times)
        });
        let fault = chosen.map(|(i, state)| {
            state.used += 1;
            (i, state.rule.fault.clone())
        });
        let mut log = lock(&shared.log);
        log.push(Exchange {
            method: method.clone(),
            path: path.clone(),
            content_length: head.content_length(),
            authorization: head.header("authorization").map(str::to_owned),
            at: Instant::now(),
            answering: None,
            done: None,
            outcome: None,
        });
        (log.len() - 1, fault)
    };
    let outcome = handle(shared, client, &head, &method, early_body, (index, fault));
    let mut log = lock(&shared.log);
    log[index].done = Some(Instant::now());
    log[index].outcome = Some(outcome);
}

fn handle(
    shared: &Shared,
    mut client: TcpStream,
    head: &Head,
    method: &str,
    early_body: Vec<u8>,
    (index, fault): (usize, Option<(usize, Fault)>),
) -> Outcome {
    match fault {
        Some((rule, Fault::ResetRequestBody { after })) => {
            let declared = head.content_length().unwrap_or(0);
            let cut = after.min(declared / 2);
            let mut body = early_body;
            let _ = read_to_length(&mut client, &mut body, cut);
            // Closing with unread bytes in the receive queue (or with more arriving)
            // makes the kernel answer with a reset: the client sees its upload torn
            // down part-way.
            drop(client);
            Outcome::Reset {
                rule,
                body_bytes: body.len(),
            }
        }
        Some((
            rule,
            Fault::Respond {
                status,
                headers,
                body,
            },
        )) => {
            // Take the whole request first: the client should read our answer, not a
            // reset caused by its unread body.
            if read_body(&mut client, head, early_body).is_err() {
                return Outcome::Injected { rule, status };
            }
            let mut response = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (name, value) in &headers {
                let _ = write!(response, "{name}: {value}\r\n");
            }
            let _ = write!(
                response,
                "Content-Length: {}\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let mut bytes = response.into_bytes();
            if method != "HEAD" {
                bytes.extend_from_slice(&body);
            }
            let _ = client.write_all(&bytes);
            let _ = client.flush();
            let _ = client.shutdown(Shutdown::Write);
            Outcome::Injected { rule, status }
        }
        Some((rule, Fault::CutResponseBody { after })) => {
            match forward(shared, &mut client, head, early_body) {
                Ok((response_head, body)) => {
                    let status = status_of(&response_head);
                    let cut = after.min(body.len() / 2);
                    let mut bytes = rewrite_response(shared, &response_head);
                    bytes.extend_from_slice(&body[..cut]);
                    let _ = client.write_all(&bytes);
                    let _ = client.flush();
                    let _ = client.shutdown(Shutdown::Both);
                    Outcome::Cut {
                        rule,
                        status,
                        body_bytes: cut,
                    }
                }
                Err(e) => upstream_failed(&mut client, &e),
            }
        }
        Some((rule, Fault::Trickle { every })) => {
            match forward(shared, &mut client, head, early_body) {
                Ok((response_head, body)) => {
                    let started = Instant::now();
                    let mut sent = 0;
                    if client
                        .write_all(&rewrite_response(shared, &response_head))
                        .is_ok()
                    {
                        while sent < body.len() && started.elapsed() < IO_LIMIT {
                            if client.write_all(&body[sent..=sent]).is_err() {
                                break;
                            }
                            sent += 1;
                            std::thread::sleep(every);
                        }
                    }
                    let _ = client.shutdown(Shutdown::Both);
                    Outcome::Trickled {
                        rule,
                        body_bytes: sent,
                    }
                }
                Err(e) => upstream_failed(&mut client, &e),
            }
        }
        Some((rule, Fault::Stall { hold })) => {
            let _ = read_body(&mut client, head, early_body);
            let started = Instant::now();
            // Wait for the client to hang up (a read returning 0 or an error) or for
            // `hold` to pass, polling so the wait stays bounded.
            let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
            let mut client_gone = false;
            let mut byte = [0u8; 1];
            while started.elapsed() < hold {
                match client.read(&mut byte) {
                    Ok(0) => {
                        client_gone = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => {
                        client_gone = true;
                        break;
                    }
                }
            }
            Outcome::Stalled {
                rule,
                held: started.elapsed(),
                client_gone,
            }
        }
        None => match forward(shared, &mut client, head, early_body) {
            Ok((response_head, body)) => {
                let mut bytes = rewrite_response(shared, &response_head);
                bytes.extend_from_slice(&body);
                lock(&shared.log)[index].answering = Some(Instant::now());
                let _ = client.write_all(&bytes);
                let _ = client.flush();
                let _ = client.shutdown(Shutdown::Write);
                Outcome::Forwarded(status_of(&response_head))
            }
            Err(e) => upstream_failed(&mut client, &e),
        },
    }
}

fn upstream_failed(client: &mut TcpStream, error: &std::io::Error) -> Outcome {
    let text = format!("fault proxy: upstream failed: {error}");
    let _ = client.write_all(
        format!(
            "HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )
        .as_bytes(),
    );
    let _ = client.shutdown(Shutdown::Write);
    Outcome::UpstreamError(error.to_string())
}

/// Sends the request (whole body read first) to the registry on a fresh connection
/// and reads its whole answer: the head and the raw body bytes (as framed upstream).
fn forward(
    shared: &Shared,
    client: &mut TcpStream,
    head: &Head,
    early_body: Vec<u8>,
) -> std::io::Result<(Head, Vec<u8>)> {
    let body = read_body(client, head, early_body)?;
    let mut upstream = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))?;
    upstream.set_read_timeout(Some(IO_LIMIT))?;
    upstream.set_write_timeout(Some(IO_LIMIT))?;
    upstream.write_all(&head.serialise(&[]))?;
    upstream.write_all(&body)?;
    upstream.flush()?;
    let (response_head, mut response_body) = read_head(&mut upstream)?;
    // We asked for Connection: close, so the registry's answer ends where its
    // connection does.
    upstream.read_to_end(&mut response_body)?;
    Ok((response_head, response_body))
}

/// The registry's response head for the client: `Connection: close`, and a
/// `Location` naming the registry pointed at the proxy instead.
fn rewrite_response(shared: &Shared, head: &Head) -> Vec<u8> {
    let upstream = shared.upstream.to_string();
    let location = head
        .header("location")
        .map(|l| l.replace(&upstream, &shared.me));
    match location {
        Some(location) => head.serialise(&[("Location", location)]),
        None => head.serialise(&[]),
    }
}

#[test]
fn chunked_bodies_are_framed() {
    assert!(!chunked_complete(b"").unwrap());
    assert!(!chunked_complete(b"3\r\nabc\r\n").unwrap());
    assert!(!chunked_complete(b"3\r\nabc\r\n0\r\n").unwrap());
    assert!(chunked_complete(b"3\r\nabc\r\n0\r\n\r\n").unwrap());
    assert!(chunked_complete(b"0\r\n\r\n").unwrap());
    assert!(chunked_complete(b"3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n").unwrap());
    assert!(chunked_complete(b"zz\r\n").is_err());
}
