//! `rtctl serve`: the web HMI, a small HTTP/1.1 server on std's blocking sockets (no async
//! runtime). One thread per connection, at most [`MAX_CONNECTIONS`] at once (the next
//! gets a 503 at once), each with read and write deadlines so a stalled client holds its
//! thread a bounded time; one request per connection. The channel is mapped again for
//! each request, so a channel whose header Linux broke is answered with the reason
//! instead of read, and a fixed one (after a reboot) is seen at once.
//!
//! Owns the socket loop only: framing is [`http`], what each path answers is [`api`]. A
//! request never makes the server panic or exit.

pub mod api;
pub mod http;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use channel::schema::CONTROL;
use channel::{Channel, Region};

use crate::{devmem, devtree, DEVICE_TREE};
use api::Link;
use http::{Parsed, Response};

/// Connections served at once; browsers open about six per host.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a client may take to send its request, or to take the answer.
const SOCKET_DEADLINE: Duration = Duration::from_secs(5);

/// Listens on `port` (every address) until killed; returns only if it cannot listen.
pub fn run(port: u16) -> Result<(), String> {
    let listener = TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| format!("serve: cannot listen on port {port}: {e}"))?;
    eprintln!("rtctl serve: listening on port {port}");
    let active = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(AtomicU64::new(0));
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("rtctl serve: accept: {e}");
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            let _ = stream.set_write_timeout(Some(SOCKET_DEADLINE));
            let busy = Response::new(503, http::TEXT, "too many connections: try again\n");
            let _ = stream.write_all(&busy.to_bytes(false));
            continue;
        }
        let (active_here, samples) = (Arc::clone(&active), Arc::clone(&samples));
        let spawned = std::thread::Builder::new()
            .name("rtctl-serve".into())
            .spawn(move || {
                serve_one(stream, &samples);
                active_here.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::AcqRel);
            eprintln!("rtctl serve: no thread for a connection: {e}");
        }
    }
    Ok(())
}

/// Reads one request, answers it, closes.
fn serve_one(mut stream: TcpStream, samples: &AtomicU64) {
    let deadlines = stream
        .set_read_timeout(Some(SOCKET_DEADLINE))
        .and_then(|()| stream.set_write_timeout(Some(SOCKET_DEADLINE)));
    if deadlines.is_err() {
        return;
    }
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (response, head_only) = loop {
        match http::parse(&buf) {
            Ok(Parsed::Complete(req, _)) => {
                let head_only = req.method == "HEAD";
                break (answer(&req, samples), head_only);
            }
            Ok(Parsed::Incomplete) => {}
            Err(why) => break (Response::refuse(why), false),
        }
        match stream.read(&mut chunk) {
            // Closed before a whole request: nobody to answer.
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break (
                    Response::new(408, http::TEXT, "the request did not arrive in time\n"),
                    false,
                )
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    };
    let _ = stream.write_all(&response.to_bytes(head_only));
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// Maps the channel for this request and lets [`api`] answer; a `POST` (a `set`) holds
/// the Linux-side writer lock, as `rtctl set` does.
fn answer(req: &http::Request, samples: &AtomicU64) -> Response {
    let sample = if req.path == "/api/telemetry" {
        samples.fetch_add(1, Ordering::Relaxed)
    } else {
        samples.load(Ordering::Relaxed)
    };
    let schema = &CONTROL;
    let mapped = devtree::find_channel(Path::new(DEVICE_TREE))
        .and_then(|span| devmem::Mapping::open(span).map(|m| (span, m)));
    let (span, mapping) = match mapped {
        Ok(m) => m,
        Err(why) => return api::respond(req, Link::Down(why), schema, sample),
    };
    let _lock = if req.method == "POST" {
        // A server thread never waits behind a writer (a stopped `rtctl set` would hold
        // it for ever): the page is told who holds the lock instead.
        match mapping.writer_lock(devmem::Wait::No) {
            Ok(lock) => Some(lock),
            Err(why) => return api::respond(req, Link::Down(why), schema, sample),
        }
    } else {
        None
    };
    match Channel::from_header(Region::new(mapping.words())) {
        Ok(ch) => api::respond(req, Link::Up(&ch), schema, sample),
        Err(e) => {
            let why = format!(
                "the channel at {:#x} ({} KiB): {e}",
                span.base,
                span.size / 1024
            );
            api::respond(req, Link::Down(why), schema, sample)
        }
    }
}
