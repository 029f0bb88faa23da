//! System access: namespaces, netlink, tools, kernel and host files.

pub mod netlink;
pub mod netns_thread;
pub mod nldump;
pub mod procfs;
pub mod tools;
