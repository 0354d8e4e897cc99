//! A loopback TCP forwarder between a store and its real Redis server that can lose a
//! reply: the command reaches the server and runs, and the connection breaks before
//! the answer comes back, as when a server dies or a network path breaks at just that
//! moment. The server is real; only the wire is cut.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Forwards `127.0.0.1:<port>` to a server; lives as long as the test process.
pub struct Proxy {
    port: u16,
    /// The database path of the server's URL (`/0`).
    db: String,
    trigger: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to the server of
    /// `url` (`redis://host:port/db`).
    pub fn start(url: &str) -> Proxy {
        let rest = url.trim_start_matches("redis://");
        let (target, db) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (target, db) = (target.to_owned(), db.to_owned());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let trigger: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let armed = Arc::clone(&trigger);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                forward(client, server, Arc::clone(&armed));
            }
        });
        Proxy { port, db, trigger }
    }

    /// `redis://127.0.0.1:<proxy port>/<db>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}{}", self.port, self.db)
    }

    /// The next command whose bytes contain `marker` runs on the server, but its reply
    /// is thrown away and its connection closed. One shot.
    pub fn lose_reply_to(&self, marker: &[u8]) {
        *self.trigger.lock().expect("trigger") = Some(marker.to_vec());
    }

    /// True once the armed reply has been lost.
    pub fn fired(&self) -> bool {
        self.trigger.lock().expect("trigger").is_none()
    }
}

fn forward(client: TcpStream, server: TcpStream, trigger: Arc<Mutex<Option<Vec<u8>>>>) {
    let lose_next_reply = Arc::new(AtomicBool::new(false));
    let (mut from_client, mut to_server) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    let lose = Arc::clone(&lose_next_reply);
    thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match from_client.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buffer[..n];
            {
                let mut armed = trigger.lock().expect("trigger");
                let hit = armed
                    .as_deref()
                    .is_some_and(|marker| chunk.windows(marker.len()).any(|w| w == marker));
                if hit {
                    *armed = None;
                    lose.store(true, Ordering::SeqCst);
                }
            }
            if to_server.write_all(chunk).is_err() {
                break;
            }
        }
        let _ = to_server.shutdown(Shutdown::Both);
    });
    let (mut from_server, mut to_client) = (server, client);
    thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match from_server.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if lose_next_reply.load(Ordering::SeqCst) {
                break;
            }
            if to_client.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(Shutdown::Both);
        let _ = from_server.shutdown(Shutdown::Both);
    });
}
