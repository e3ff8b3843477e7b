//! Value types that check their own syntax when they are deserialized.
//!
//! Every string that reaches a generated file (nginx, XML, YAML, systemd unit,
//! nft rules, process arguments) passes through one of these types, so no
//! value can carry a newline, a quote, a brace, a semicolon or another
//! delimiter of those formats.

mod http;
mod macros;
mod names;
mod net;
mod path;
mod text;

pub use http::{ALLOWED_HEADER_NAMES, HeaderName, HeaderValue, UploadMegabytes};
pub use names::{AccountName, AppName, DnsName};
pub use net::{HttpsUrl, Port};
pub use path::{AbsPath, PathPrefix};
pub use text::Reason;
pub use ipnet::IpNet;
