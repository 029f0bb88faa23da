//! nsid of other netns as seen from the calling thread's netns: RTM_GETNSID with
//! `NETNSA_FD`. This only reads; it never assigns an nsid (RTM_NEWNSID would).

use super::{Conn, NetlinkError};
use netlink_packet_core::{NetlinkMessage, NLM_F_ACK, NLM_F_REQUEST};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::RouteNetlinkMessage;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// The nsid of the netns open as `fd`, or `None` when none is assigned.
pub async fn nsid_of(
    conn: &mut Conn,
    fd: &impl AsRawFd,
    timeout: Duration,
) -> Result<Option<i32>, NetlinkError> {
    let raw = u32::try_from(fd.as_raw_fd()).map_err(|_| NetlinkError::Unexpected)?;
    let mut msg = NsidMessage::default();
    msg.attributes = vec![NsidAttribute::Fd(raw)];
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetNsId(msg));
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    let d = conn.collect(req, timeout).await?;
    for m in d.messages {
        if let RouteNetlinkMessage::NewNsId(n) = m {
            for a in n.attributes {
                if let NsidAttribute::Id(id) = a {
                    return Ok((id >= 0).then_some(id));
                }
            }
        }
    }
    Ok(None)
}
