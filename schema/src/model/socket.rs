use serde::{Deserialize, Serialize};

/// One entry of `netns/<id>/sockets.json`: a listening TCP or a bound UDP socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    pub proto: SocketProto,
    /// Local address (`0.0.0.0`, `::` for wildcard).
    pub local: String,
    pub port: u16,
    #[serde(default)]
    pub inode: u64,
    #[serde(default)]
    pub uid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketProto {
    Tcp,
    Tcp6,
    Udp,
    Udp6,
}
