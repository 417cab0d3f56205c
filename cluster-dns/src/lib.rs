//! Kumos cluster DNS: Kubernetes DNS-based service discovery (`<svc>.<ns>.svc.<zone>` A records,
//! headless services' endpoint addresses, SRV records for named ports, ExternalName CNAMEs, cluster IP
//! PTRs) served over UDP and TCP from Services and Endpoints watched through the Kubernetes API.
//!
//! Layout: `table` (the records, pure), `answer` (DNS wire messages in and out, pure), `server` (the
//! UDP/TCP listeners) and `watch` (kube reflectors feeding the table; [`run`] ties them together).

pub mod answer;
pub mod server;
pub mod table;
pub mod watch;

pub use watch::{run, DnsConfig};
