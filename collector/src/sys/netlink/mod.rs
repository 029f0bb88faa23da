//! rtnetlink dumps of one netns, converted to schema types.
//!
//! The connection is rtnetlink 0.24's stack (netlink-proto + netlink-packet-route)
//! run on a `current_thread` tokio runtime inside the netns thread. It is built with a
//! codec that *counts* messages it cannot decode: the stock codec logs and drops them,
//! which would turn a parser gap into a silent hole in the bundle. A dump with
//! undecodable messages is recorded as `partial` with the count.
//!
//! Route dumps use a connection without `NETLINK_GET_STRICT_CHK`: with strict checking
//! the kernel filters a dump to the main table.
//!
//! Why rtnetlink only as a transport, under a `current_thread` runtime per netns thread:
//! its high-level API (`Handle::link().get()` …) decodes with the stock codec (the
//! silent drops above) and returns its own types, so the dumps build the request
//! messages themselves and read netlink-packet-route messages off the connection.
//! The runtime is one per netns thread (a thread that `setns`ed must not share a
//! reactor with others) and costs one epoll instance per netns. A small synchronous
//! socket like netavark's (`src/network/netlink.rs`) would drop tokio from the
//! collector; it is what [`super::nldump`] already does for the raw dumps, and moving
//! these dumps there is a rewrite of the dump loop, sequence checks and timeouts this
//! change did not take on.

pub mod addrs;
pub mod links;
pub mod neigh;
pub mod nsid;
pub mod routes;

use bytes::BytesMut;
use futures::StreamExt;
use netlink_packet_core::{
    NetlinkBuffer, NetlinkDeserializable, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::proto::{ConnectionHandle, NetlinkCodec, NetlinkMessageCodec};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, SocketAddr, TokioSocket};
use std::cell::Cell;
use std::fmt::Debug;
use std::io;
use std::time::Duration;

thread_local! {
    /// Messages the codec of this thread's connection could not decode.
    static UNDECODED: Cell<u64> = const { Cell::new(0) };
}

fn undecoded() -> u64 {
    UNDECODED.with(|c| c.get())
}

/// Like netlink-proto's `NetlinkCodec`, but counts what it drops.
pub struct CountingCodec;

impl NetlinkMessageCodec for CountingCodec {
    fn decode<T>(src: &mut BytesMut) -> io::Result<Option<NetlinkMessage<T>>>
    where
        T: NetlinkDeserializable + Debug,
    {
        loop {
            if src.is_empty() {
                return Ok(None);
            }
            let len = match NetlinkBuffer::new_checked(src.as_ref()) {
                Ok(buf) if buf.length() > 0 => buf.length() as usize,
                Ok(_) | Err(_) => {
                    // Cannot find the next message boundary: the rest is lost.
                    UNDECODED.with(|c| c.set(c.get() + 1));
                    src.clear();
                    return Ok(None);
                }
            };
            let bytes = src.split_to(len.min(src.len()));
            match NetlinkMessage::<T>::deserialize(&bytes) {
                Ok(msg) => return Ok(Some(msg)),
                Err(_) => UNDECODED.with(|c| c.set(c.get() + 1)),
            }
        }
    }

    fn encode<T>(msg: NetlinkMessage<T>, buf: &mut BytesMut) -> io::Result<()>
    where
        T: NetlinkSerializable + Debug,
    {
        NetlinkCodec::encode(msg, buf)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("{reason}", reason = crate::source::io_reason("opening a netlink socket", source))]
    Socket { source: io::Error },
    #[error("building the async runtime: {0}")]
    Runtime(io::Error),
    #[error("netlink request could not be sent (connection closed)")]
    Request,
    #[error("{}", errno_text(*.0))]
    Kernel(i32),
    #[error("netlink dump timed out after {0:.1}s")]
    Timeout(f64),
    #[error("unexpected netlink reply")]
    Unexpected,
}

fn errno_text(code: i32) -> String {
    let e = io::Error::from_raw_os_error(code.abs());
    crate::source::io_reason("netlink request", &e)
}

/// A finished dump: the messages, and what makes it incomplete.
#[derive(Debug)]
pub struct Dump<M> {
    pub messages: Vec<M>,
    /// Messages that could not be decoded (skipped).
    pub undecoded: u64,
    /// The kernel flagged the dump as interrupted by a concurrent change.
    pub interrupted: bool,
}

impl<M> Default for Dump<M> {
    fn default() -> Self {
        Dump {
            messages: Vec::new(),
            undecoded: 0,
            interrupted: false,
        }
    }
}

impl<M> Dump<M> {
    /// Why the dump is incomplete, if it is.
    pub fn problem(&self) -> Option<String> {
        let mut v = Vec::new();
        if self.undecoded > 0 {
            v.push(format!(
                "{} netlink message(s) could not be decoded",
                self.undecoded
            ));
        }
        if self.interrupted {
            v.push("dump interrupted by a concurrent change (NLM_F_DUMP_INTR)".into());
        }
        (!v.is_empty()).then(|| v.join("; "))
    }

    pub fn map<N>(self, f: impl FnMut(M) -> Option<N>) -> Dump<N> {
        Dump {
            messages: self.messages.into_iter().filter_map(f).collect(),
            undecoded: self.undecoded,
            interrupted: self.interrupted,
        }
    }
}

/// An rtnetlink connection of the current thread's netns.
pub struct Conn {
    handle: ConnectionHandle<RouteNetlinkMessage>,
}

impl Conn {
    /// Opens the socket (in the calling thread's netns) and spawns the connection task
    /// on the current runtime.
    pub fn open() -> Result<Conn, NetlinkError> {
        let (conn, handle, _messages) = rtnetlink::proto::new_connection_with_codec::<
            RouteNetlinkMessage,
            TokioSocket,
            CountingCodec,
        >(NETLINK_ROUTE)
        .map_err(|source| NetlinkError::Socket { source })?;
        tokio::spawn(conn);
        Ok(Conn { handle })
    }

    /// Sends `msg` with NLM_F_DUMP and collects every reply.
    pub async fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        timeout: Duration,
    ) -> Result<Dump<RouteNetlinkMessage>, NetlinkError> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        self.collect(req, timeout).await
    }

    /// Sends a request and collects the replies until the kernel is done.
    pub async fn collect(
        &mut self,
        req: NetlinkMessage<RouteNetlinkMessage>,
        timeout: Duration,
    ) -> Result<Dump<RouteNetlinkMessage>, NetlinkError> {
        let before = undecoded();
        let mut stream = self
            .handle
            .request(req, SocketAddr::new(0, 0))
            .map_err(|_| NetlinkError::Request)?;
        let work = async {
            let mut dump = Dump::default();
            while let Some(msg) = stream.next().await {
                if msg.header.flags & NLM_F_DUMP_INTR != 0 {
                    dump.interrupted = true;
                }
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => dump.messages.push(m),
                    NetlinkPayload::Error(e) => {
                        if let Some(code) = e.code {
                            return Err(NetlinkError::Kernel(code.get()));
                        }
                    }
                    _ => {}
                }
            }
            Ok(dump)
        };
        let mut dump = tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| NetlinkError::Timeout(timeout.as_secs_f64()))??;
        dump.undecoded = undecoded() - before;
        Ok(dump)
    }
}

/// A `current_thread` runtime for the calling (netns) thread.
pub fn runtime() -> Result<tokio::runtime::Runtime, NetlinkError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(NetlinkError::Runtime)
}

/// `aa:bb:cc:dd:ee:ff`
pub fn mac_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `inet` / `inet6` / `bridge` / the number.
pub fn family_name(family: u8) -> String {
    match i32::from(family) {
        libc::AF_INET => "inet".into(),
        libc::AF_INET6 => "inet6".into(),
        libc::AF_BRIDGE => "bridge".into(),
        libc::AF_UNSPEC => "unspec".into(),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_and_family() {
        assert_eq!(
            mac_string(&[0xde, 0xad, 0, 1, 2, 0xff]),
            "de:ad:00:01:02:ff"
        );
        assert_eq!(family_name(2), "inet");
        assert_eq!(family_name(10), "inet6");
        assert_eq!(family_name(7), "bridge");
    }

    #[test]
    fn codec_counts_garbage() {
        // One valid NLMSG_DONE-like header with an undecodable payload type, then garbage.
        let mut src = BytesMut::from(&[0x05u8, 0, 0, 0][..]);
        let r = CountingCodec::decode::<RouteNetlinkMessage>(&mut src).unwrap();
        assert!(r.is_none());
        assert!(src.is_empty());
        assert_eq!(undecoded(), 1);
    }
}
