//! Notification mail over SMTP (lettre, rustls on ring): plain text with the snapshot's
//! name, status, counts, size, a link to its page under `public_url` (a link that keeps
//! working, unlike a presigned URL), and the error of a failed run.

use lettre::message::Body;
use lettre::message::Mailbox;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::{Security, Smtp};
use super::{Event, NotifyError};

/// The mail's subject and text.
pub fn render(e: &Event) -> (String, String) {
    let what = if e.incomplete && e.status == "completed" { "completed, incomplete" } else { e.status };
    let subject = format!("[ferry] snapshot {} {what}", e.name);
    let mut text = format!("Snapshot: {}\nStatus: {what}\nJob: {}\n", e.name, e.job);
    if let Some(s) = &e.schedule {
        text.push_str(&format!("Schedule: {s}\n"));
    }
    if let Some(r) = e.records {
        text.push_str(&format!("Records: {}\n", indicatif::HumanCount(r)));
    }
    if let Some(f) = e.files {
        text.push_str(&format!("Files: {f}\n"));
    }
    if let Some(b) = e.bytes {
        text.push_str(&format!("Size: {} ({b} bytes)\n", indicatif::HumanBytes(b)));
    }
    text.push_str(&format!("Requested: {}\n", e.created_at));
    if let Some(c) = &e.completed_at {
        text.push_str(&format!("Finished: {c}\n"));
    }
    if let Some(x) = &e.expires_at {
        text.push_str(&format!("Expires: {x}\n"));
    }
    if let Some(err) = &e.error {
        text.push_str(&format!("Error: {err}\n"));
    }
    // Each link on a line of its own: mail readers link it whole.
    text.push_str(&format!(
        "\nSnapshot page:\n{}\n\nFiles (API, with a token):\n{}\n\nSnapshot id: {}\n",
        e.url, e.files_url, e.snapshot_id
    ));
    (subject, text)
}

/// Sends the event's mail to `to`: the SMTP answer's code is not an HTTP status, so
/// `Ok(None)`.
pub async fn send(smtp: &Smtp, to: &[Mailbox], event: &Event) -> Result<Option<u16>, NotifyError> {
    let (subject, text) = render(event);
    let mut builder = Message::builder().from(smtp.from.clone()).subject(subject).header(ContentType::TEXT_PLAIN);
    for m in to {
        builder = builder.to(m.clone());
    }
    // 8bit keeps the text (and its links) readable as sent; quoted-printable only when a
    // line is too long for it (an error message, a long public URL).
    let body = Body::new_with_encoding(text.clone(), ContentTransferEncoding::EightBit).unwrap_or_else(|_| Body::new(text));
    let message = builder.body(body)?;
    let setup = |e: lettre::transport::smtp::Error| NotifyError::SmtpSetup { host: smtp.host.clone(), reason: e.to_string() };
    let tls = |host: &str| TlsParameters::new(host.into()).map_err(setup);
    let mut transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str()).port(smtp.port).timeout(Some(smtp.timeout));
    transport = match smtp.security {
        Security::Tls => transport.tls(Tls::Wrapper(tls(&smtp.host)?)),
        Security::Starttls => transport.tls(Tls::Required(tls(&smtp.host)?)),
        Security::None => transport.tls(Tls::None),
    };
    if let Some((user, password)) = &smtp.credentials {
        let password = password
            .get()
            .ok_or_else(|| NotifyError::SmtpSetup { host: smtp.host.clone(), reason: "the password was not loaded".into() })?;
        transport = transport.credentials(Credentials::new(user.clone(), password.expose().to_string()));
    }
    let transport = transport.build();
    let sent = tokio::time::timeout(smtp.timeout * 2, transport.send(message)).await;
    match sent {
        Ok(Ok(_)) => Ok(None),
        Ok(Err(source)) => Err(NotifyError::Smtp { host: smtp.host.clone(), port: smtp.port, source }),
        Err(_) => Err(NotifyError::SmtpTimeout { host: smtp.host.clone(), port: smtp.port, after: smtp.timeout * 2 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_build_on_ring_with_the_system_roots() {
        // rustls has exactly one provider compiled in (ring): no OpenSSL, no aws-lc.
        assert!(TlsParameters::new("smtp.example.com".into()).is_ok());
    }

    #[test]
    fn a_failure_mail_has_the_error_and_the_link() {
        let e = Event {
            event: "snapshot.failed",
            snapshot_id: "0f8e4a52-1c3b-4d7e-9a61-2b5c8d9e0f13".into(),
            name: "nightly".into(),
            job: "nightly".into(),
            schedule: Some("weekly".into()),
            status: "failed",
            incomplete: false,
            records: None,
            files: None,
            parts: None,
            bytes: None,
            created_at: "2026-12-07T02:00:01Z".into(),
            completed_at: Some("2026-12-07T02:00:09Z".into()),
            expires_at: None,
            url: "https://ferry.example.com/snapshots/0f8e4a52-1c3b-4d7e-9a61-2b5c8d9e0f13".into(),
            files_url: "https://ferry.example.com/api/v1/snapshots/0f8e4a52-1c3b-4d7e-9a61-2b5c8d9e0f13/files".into(),
            error: Some("source: cannot open platform.db".into()),
        };
        let (subject, text) = render(&e);
        assert_eq!(subject, "[ferry] snapshot nightly failed");
        for needle in [
            "Status: failed\n",
            "Schedule: weekly\n",
            "Error: source: cannot open platform.db\n",
            "\nhttps://ferry.example.com/snapshots/0f8e4a52",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
        assert!(!text.contains("Records:"), "no counts for a run that recorded none");
    }
}
