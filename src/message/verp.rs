//! VERP: recovering the failed recipient from the envelope address a bounce
//! was sent to, e.g. `bounces+kijitora=example.jp@example.com`.

use super::Verp;
use super::mime::Headers;
use super::scan;

impl Verp {
    /// Decodes `address` with this pattern: `Some(local@domain)` when the
    /// address has the pattern's shape (literal parts compared without case).
    pub fn decode(&self, address: &str) -> Option<String> {
        let pattern = self.as_str();
        let li = pattern.find("{local}")?;
        let di = pattern.find("{domain}")?;
        if li > di {
            return None;
        }
        let prefix = &pattern[..li];
        let sep = &pattern[li + "{local}".len()..di];
        let suffix = &pattern[di + "{domain}".len()..];
        let lower = address.to_ascii_lowercase();
        if lower.len() < prefix.len() + sep.len() + suffix.len()
            || !lower.starts_with(&prefix.to_ascii_lowercase())
            || !lower.ends_with(&suffix.to_ascii_lowercase())
        {
            return None;
        }
        let middle = address.get(prefix.len()..address.len() - suffix.len())?;
        // The domain cannot contain the separator, so split at its last use.
        let (local, domain) = if sep.is_empty() {
            return None;
        } else {
            middle.rsplit_once(sep)?
        };
        if local.is_empty() || domain.is_empty() || !domain.contains('.') {
            return None;
        }
        Some(format!("{local}@{}", domain.to_ascii_lowercase()))
    }

    /// The recipient encoded in the bounce's envelope headers, if any.
    pub fn recipient(&self, headers: &Headers) -> Option<String> {
        ["delivered-to", "x-original-to", "envelope-to", "to"]
            .iter()
            .flat_map(|n| headers.get_all(n))
            .filter_map(scan::header_address)
            .find_map(|a| self.decode(&a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verp_address_is_decoded() {
        let v = Verp::parse("bounces+{local}={domain}@example.com").unwrap();
        assert_eq!(
            v.decode("bounces+kijitora=Example.JP@example.com")
                .as_deref(),
            Some("kijitora@example.jp")
        );
        assert_eq!(v.decode("someone@example.com"), None);
    }
}
