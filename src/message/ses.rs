//! Amazon SES notifications delivered by mail (SNS e-mail subscriptions):
//! a JSON document instead of a DSN. Mail gateways often wrap or mangle the
//! long JSON line, so fields are read with a tolerant scanner rather than a
//! strict JSON parser.

/// What an SES notification reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    /// `notificationType: Bounce`, with the bounced recipients.
    Bounce(Vec<SesRecipient>),
    /// `notificationType: Complaint`: complained recipients and the type.
    Complaint(Vec<String>, Option<String>),
    /// `notificationType: Delivery`: a success report.
    Delivery,
}

/// One entry of `bouncedRecipients`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SesRecipient {
    pub address: String,
    pub action: Option<String>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
}

/// The string value of `"key":"..."` at or after `from`, with its end offset.
fn string_field(text: &str, key: &str, from: usize) -> Option<(String, usize)> {
    let pat = format!("\"{key}\":\"");
    let start = text.get(from..)?.find(&pat)? + from + pat.len();
    let mut out = String::new();
    let mut chars = text[start..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, start + i + 1)),
            '\\' => {
                if let Some((_, e)) = chars.next() {
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                }
            }
            _ => out.push(c),
        }
        if out.len() > 4096 {
            break;
        }
    }
    None
}

/// Reads an SES notification from a body, or `None` when it is not one.
pub fn parse(text: &str) -> Option<Notice> {
    let (kind, _) = string_field(text, "notificationType", 0)?;
    match kind.as_str() {
        "Bounce" => {
            let list = text.find("\"bouncedRecipients\"")?;
            let end = text[list..].find(']').map_or(text.len(), |i| list + i);
            let mut out = Vec::new();
            let mut pos = list;
            while let Some((address, after)) = string_field(&text[..end], "emailAddress", pos) {
                // Fields of this entry run to its closing brace.
                let close = text[after..end].find('}').map_or(end, |i| after + i);
                let field = |k: &str| string_field(&text[..close], k, pos).map(|(v, _)| v);
                out.push(SesRecipient {
                    address,
                    action: field("action"),
                    status: field("status"),
                    diagnostic: field("diagnosticCode"),
                });
                pos = close;
                if out.len() >= 100 {
                    break;
                }
            }
            Some(Notice::Bounce(out))
        }
        "Complaint" => {
            let list = text.find("\"complainedRecipients\"")?;
            let end = text[list..].find(']').map_or(text.len(), |i| list + i);
            let mut out = Vec::new();
            let mut pos = list;
            while let Some((address, after)) = string_field(&text[..end], "emailAddress", pos) {
                out.push(address);
                pos = after;
            }
            let fbt =
                string_field(text, "complaintFeedbackType", 0).map(|(v, _)| v.to_ascii_lowercase());
            Some(Notice::Complaint(out, fbt))
        }
        "Delivery" => Some(Notice::Delivery),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_notification_lists_recipients() {
        let t = r#"{"notificationType":"Bounce","bounce":{"bouncedRecipients":[{"emailAddress":"a@example.org","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}]}}"#;
        let Some(Notice::Bounce(r)) = parse(t) else {
            panic!("not a bounce")
        };
        assert_eq!(r[0].address, "a@example.org");
        assert_eq!(r[0].status.as_deref(), Some("5.1.1"));
    }
}
