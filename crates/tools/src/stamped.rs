//! UDP receive with the kernel's arrival timestamp (`SO_TIMESTAMPNS`).
//!
//! On loopback the kernel stamps a datagram when the sender's `sendto` hands it over, so the
//! stamp is the daemon's send time, whatever the load generator's own scheduling delays. The
//! load generator measures the daemon's pacing with it, and separately when it got to read.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::SockAddr;

/// Asks the kernel to stamp every datagram `socket` receives.
pub fn enable(socket: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd, and a pointer to a c_int with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One datagram: its length, its source and the kernel's stamp (since the Unix epoch), if any.
pub fn recv(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<Duration>)> {
    recv_fd(socket.as_raw_fd(), buf)
}

fn recv_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<Duration>)> {
    // Room for one SCM_TIMESTAMPNS message, u64-aligned as cmsghdr wants.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>() as _;
    // SAFETY: socket2 hands over zeroed address storage and its length; every other pointer
    // in msg refers to a live local buffer of the stated length.
    let (n, source) = unsafe {
        SockAddr::try_init(|storage, len| {
            msg.msg_name = storage.cast();
            msg.msg_namelen = *len;
            let n = libc::recvmsg(fd, &raw mut msg, libc::MSG_DONTWAIT);
            *len = msg.msg_namelen;
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })?
    };
    let source = source.as_socket().ok_or_else(|| io::Error::other("a datagram from a non-IP address"))?;
    let mut stamp = None;
    // SAFETY: the CMSG_* walk stays within msg_controllen, which the kernel set.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok((n, source, stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_arrives_with_its_source_and_a_kernel_stamp() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(&rx).unwrap();
        #[allow(clippy::disallowed_methods)] // comparing with the kernel's wall clock
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 64];
        let (n, source, stamp) = loop {
            match recv(&rx, &mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                other => break other.unwrap(),
            }
        };
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(source, tx.local_addr().unwrap());
        let stamp = stamp.expect("the kernel stamped the datagram");
        assert!(stamp + Duration::from_millis(1) >= before, "{stamp:?} is before the send at {before:?}");
        assert!(stamp < before + Duration::from_secs(5), "{stamp:?} is long after the send at {before:?}");
        assert_eq!(recv(&rx, &mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }
}
