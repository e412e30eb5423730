//! A TCP proxy in front of the server, for faults a real server does not make on demand:
//! reset every connection (the server stays up), or swallow everything (a server that
//! never answers), then heal.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A proxy listening on 127.0.0.1 (an ephemeral port) and forwarding to a server.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    state: Arc<State>,
}

struct State {
    upstream: SocketAddr,
    /// While set, accepted connections are held open but nothing is forwarded.
    black_hole: AtomicBool,
    /// Every socket of every live connection (both sides), to cut them.
    sockets: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// A proxy to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State { upstream, black_hole: AtomicBool::new(false), sockets: Mutex::new(Vec::new()) });
        let s = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || s.serve(client));
            }
        });
        Proxy { addr, state }
    }

    /// Cuts every connection (the client sees a reset or EOF); new ones are forwarded.
    pub fn reset(&self) {
        for s in self.state.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// From now on nothing reaches the server and nothing comes back; existing
    /// connections are cut.
    pub fn black_hole(&self) {
        self.state.black_hole.store(true, Ordering::SeqCst);
        self.reset();
    }

    /// Forwards again (new connections).
    pub fn heal(&self) {
        self.state.black_hole.store(false, Ordering::SeqCst);
        self.reset();
    }
}

impl State {
    fn serve(self: Arc<Self>, client: TcpStream) {
        if self.black_hole.load(Ordering::SeqCst) {
            // Hold the connection, read and drop what comes, never answer.
            self.sockets.lock().unwrap().push(client.try_clone().unwrap());
            let mut c = client;
            let mut buf = [0u8; 4096];
            while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
            return;
        }
        let Ok(server) = TcpStream::connect_timeout(&self.upstream, Duration::from_secs(5)) else { return };
        {
            let mut v = self.sockets.lock().unwrap();
            v.push(client.try_clone().unwrap());
            v.push(server.try_clone().unwrap());
        }
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || pump(c2, s2));
        pump(server, client);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
