//! Datagrams sent many to a syscall (`sendmmsg`).
//!
//! Every sample frame goes to every connected caller in the same turn: at 200 callers and a
//! 10 ms packet time that is 200 datagrams at once, 20 000 a second. One `sendmmsg` per
//! [`BATCH`] datagrams pays the syscall's entry and exit once instead of per datagram.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::SockAddr;

/// Most datagrams handed to the kernel in one call.
pub const BATCH: usize = 64;

/// What one batch's sending came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub sent: usize,
    /// Dropped because the socket's send buffer was full.
    pub would_block: usize,
    /// Refused by the kernel for their destination (unreachable, refused, ...).
    pub failed: usize,
}

/// Datagrams waiting to go out, in order.
#[derive(Default)]
pub struct SendBatch {
    queued: Vec<(SockAddr, Vec<u8>)>,
}

impl SendBatch {
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    pub fn push(&mut self, destination: SocketAddr, contents: Vec<u8>) {
        self.queued.push((SockAddr::from(destination), contents));
    }

    /// Sends everything queued on `socket` (non-blocking) and empties the batch. A datagram
    /// the kernel refuses is counted and skipped; the rest still go.
    pub fn send(&mut self, socket: &impl AsRawFd) -> Sent {
        let fd = socket.as_raw_fd();
        let mut result = Sent::default();
        let mut start = 0;
        while start < self.queued.len() {
            let chunk = &self.queued[start..(start + BATCH).min(self.queued.len())];
            match send_chunk(fd, chunk) {
                Ok(n) => {
                    result.sent += n;
                    start += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The send buffer is full: what is left of this turn's burst is dropped
                    // (audio is real-time; the next frame follows in one ptime).
                    result.would_block += self.queued.len() - start;
                    log::debug!("UDP send buffer full; dropped {} datagrams", self.queued.len() - start);
                    break;
                }
                Err(e) => {
                    // The first datagram of the chunk was refused: skip it, go on with the rest.
                    let destination = chunk[0].0.as_socket();
                    log::debug!("UDP send to {destination:?} failed: {e}");
                    result.failed += 1;
                    start += 1;
                }
            }
        }
        self.queued.clear();
        result
    }
}

/// One `sendmmsg` of up to [`BATCH`] datagrams; how many the kernel took (at least one).
fn send_chunk(fd: std::os::fd::RawFd, chunk: &[(SockAddr, Vec<u8>)]) -> io::Result<usize> {
    debug_assert!(!chunk.is_empty() && chunk.len() <= BATCH);
    // SAFETY: all-zero is a valid iovec and mmsghdr.
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (i, (addr, contents)) in chunk.iter().enumerate() {
        iovs[i] = libc::iovec { iov_base: contents.as_ptr() as *mut libc::c_void, iov_len: contents.len() };
        let hdr = &mut msgs[i].msg_hdr;
        hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
        hdr.msg_namelen = addr.len();
        hdr.msg_iov = &raw mut iovs[i];
        hdr.msg_iovlen = 1;
    }
    // SAFETY: the first chunk.len() headers point at addresses and buffers that live until
    // the call returns; the kernel only reads them (and writes msg_len).
    let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), chunk.len() as libc::c_uint, libc::MSG_DONTWAIT) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else if n == 0 {
        Err(io::Error::from(io::ErrorKind::WouldBlock))
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn receiver() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    }

    #[test]
    fn every_datagram_of_a_large_batch_arrives_in_order_at_its_own_destination() {
        let (a, b) = (receiver(), receiver());
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.set_nonblocking(true).unwrap();
        let mut batch = SendBatch::default();
        let count = BATCH * 2 + 7; // more than one chunk
        for i in 0..count {
            let to = if i % 3 == 0 { &a } else { &b };
            batch.push(to.local_addr().unwrap(), format!("datagram {i}").into_bytes());
        }
        let sent = batch.send(&tx);
        assert_eq!(sent, Sent { sent: count, would_block: 0, failed: 0 });
        assert!(batch.is_empty());
        let received = |socket: &UdpSocket, n: usize| -> Vec<String> {
            let mut buf = [0u8; 64];
            let mut one = || {
                let len = socket.recv(&mut buf).unwrap();
                String::from_utf8_lossy(&buf[..len]).into_owned()
            };
            (0..n).map(|_| one()).collect()
        };
        let wanted = |keep: fn(usize) -> bool| -> Vec<String> {
            (0..count).filter(|&i| keep(i)).map(|i| format!("datagram {i}")).collect()
        };
        let (want_a, want_b) = (wanted(|i| i % 3 == 0), wanted(|i| i % 3 != 0));
        assert_eq!(received(&a, want_a.len()), want_a);
        assert_eq!(received(&b, want_b.len()), want_b);
    }

    #[test]
    fn a_refused_destination_is_skipped_and_the_rest_still_go() {
        let rx = receiver();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.set_nonblocking(true).unwrap();
        let mut batch = SendBatch::default();
        batch.push(rx.local_addr().unwrap(), b"first".to_vec());
        // Port 0 is no destination: the kernel refuses this one datagram.
        batch.push("127.0.0.1:0".parse().unwrap(), b"nowhere".to_vec());
        batch.push(rx.local_addr().unwrap(), b"third".to_vec());
        let sent = batch.send(&tx);
        assert_eq!(sent, Sent { sent: 2, would_block: 0, failed: 1 });
        let mut buf = [0u8; 16];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"third");
    }
}
