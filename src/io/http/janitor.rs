//! The janitor's work: closing (for reading) HTTP connections that have sent nothing for a
//! while, since tiny_http reads without timeouts.

use std::time::Duration;

/// Every connection accepted on `port` that has received nothing for `idle` is shut down
/// for reading: a blocked read there (ours, of a body, or tiny_http's, of the next request
/// line) returns at once. So neither an idle keep-alive connection nor a client that never
/// finishes its request holds a thread for longer than that (and a pending answer can
/// still be written).
pub(super) fn close_idle_connections(port: u16, idle: Duration) {
    let idle_ms = u32::try_from(idle.as_millis()).unwrap_or(u32::MAX);
    for_each_tcp_socket(|socket| {
        let ours = socket.local_addr().ok().and_then(|a| a.as_socket()).is_some_and(|a| a.port() == port);
        if ours && socket.peer_addr().is_ok() && quiet_for_ms(socket).is_some_and(|ms| ms >= idle_ms) {
            let peer = socket.peer_addr().ok().and_then(|a| a.as_socket());
            log::debug!("HTTP connection from {peer:?} idle for {idle:?}; closing it");
            let _ = socket.shutdown(std::net::Shutdown::Read);
        }
    });
}

/// Milliseconds since the connection last received data (Linux `TCP_INFO`).
fn quiet_for_ms(socket: &socket2::SockRef<'_>) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a writable `tcp_info` of `len` bytes; the kernel writes at most
    // `len` bytes and reports how many. The descriptor is borrowed (see `for_each_tcp_socket`).
    let rc = unsafe {
        libc::getsockopt(socket.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, info.as_mut_ptr().cast(), &mut len)
    };
    // SAFETY: zero-initialised, and partly or wholly filled in by the kernel: every bit
    // pattern is a valid `tcp_info` (plain integers).
    (rc == 0).then(|| unsafe { info.assume_init() }.tcpi_last_data_recv)
}

/// Calls `f` on each TCP socket of this process.
///
/// tiny_http reads from its connections without timeouts and does not expose their sockets,
/// so they are found among the process's descriptors (Linux: `/proc/self/fd`).
fn for_each_tcp_socket(mut f: impl FnMut(&socket2::SockRef<'_>)) {
    use std::os::fd::{BorrowedFd, RawFd};
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return };
    for entry in fds.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok()) else { continue };
        // SAFETY: only getsockname, getpeername, getsockopt and shutdown(Read) are called on
        // the descriptor, while this loop holds it; if another thread closed it meanwhile,
        // they fail with EBADF or ENOTSOCK (or look at whatever reused the number, which is
        // shut down only if it too is an idle connection of ours). Nothing is read, written
        // or closed.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        if socket.r#type().is_ok_and(|t| t == socket2::Type::STREAM) {
            f(&socket);
        }
    }
}
