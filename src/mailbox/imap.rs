//! IMAP placeholder.
use super::{Error, Mailbox};
pub fn open(settings: &crate::config::Mailbox) -> Result<Box<dyn Mailbox>, Error> {
    Err(Error::Unavailable { server: settings.host.clone(), reason: "todo".into() })
}
