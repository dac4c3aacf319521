//! Outgoing mail (docs/wire-contract.md §3.10): a bounded queue and one task that delivers
//! it through SMTP, or, with no SMTP server configured, writes each message as an `.eml`
//! file into `<data-dir>/outbox/`. A request only queues its message: a slow or failing
//! server never holds an answer up. A failed delivery is tried again after 2, 10, 60 and
//! 300 seconds, then given up and logged. Neither the message nor its link is ever logged:
//! they carry restore keys.

use std::{path::PathBuf, sync::Arc, time::Duration};

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
};
use tokio::sync::{Semaphore, mpsc};

use crate::{config::Config, error::BoxError};

/// Messages waiting to be delivered; one more is dropped (and logged).
const QUEUE: usize = 1_024;
/// Deliveries under way at once.
const DELIVERIES: usize = 4;
/// The pauses before each new try of a failed delivery.
const RETRIES: [Duration; 4] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(300),
];

/// A message to send: to whom, the subject and the plain-text body.
#[derive(Clone)]
pub struct Mail {
    pub to: Mailbox,
    pub subject: String,
    pub text: String,
    /// What the log may say about it (never the text: it may carry a secret).
    pub about: &'static str,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail").field("about", &self.about).finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

/// The sending side of the mail queue; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    queue: mpsc::Sender<Mail>,
}

impl Mailer {
    /// The mailer of `config`; starts its delivery task (on the current runtime).
    pub fn start(config: &Config) -> Result<Self, BoxError> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| format!("--mail-from `{}`: {e}", config.mail_from))?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    // The URL may hold a password: the error says what is wrong, not the URL.
                    .map_err(|e| format!("--smtp-url: {e}"))?
                    .timeout(Some(Duration::from_secs(30)))
                    .build(),
            ),
            None => {
                let outbox = config.data_dir.join("outbox");
                std::fs::create_dir_all(&outbox)
                    .map_err(|e| format!("cannot create {}: {e}", outbox.display()))?;
                Transport::Outbox(AsyncFileTransport::new(&outbox), outbox)
            }
        };
        match &transport {
            Transport::Smtp(_) => {
                tracing::info!("mail goes out through the SMTP server of --smtp-url")
            }
            Transport::Outbox(_, dir) => {
                tracing::info!(outbox = %dir.display(), "no --smtp-url: mail is written to the outbox");
            }
        }
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(deliver_all(transport, from, waiting));
        Ok(Self { queue })
    }

    /// Queues `mail`; never waits. A full queue drops it, with a warning.
    pub fn send(&self, mail: Mail) {
        let about = mail.about;
        if self.queue.try_send(mail).is_err() {
            tracing::warn!(about, "the mail queue is full: a message is dropped");
        }
    }
}

/// Delivers the queue's messages, a few at once, until every [`Mailer`] is gone.
async fn deliver_all(transport: Transport, from: Mailbox, mut waiting: mpsc::Receiver<Mail>) {
    let slots = Arc::new(Semaphore::new(DELIVERIES));
    while let Some(mail) = waiting.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let (transport, from) = (transport.clone(), from.clone());
        tokio::spawn(async move {
            deliver(&transport, &from, mail).await;
            drop(slot);
        });
    }
}

/// One message, tried until it is delivered or every retry has failed.
async fn deliver(transport: &Transport, from: &Mailbox, mail: Mail) {
    let about = mail.about;
    let message = match Message::builder()
        .from(from.clone())
        .to(mail.to)
        .subject(mail.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text)
    {
        Ok(message) => message,
        Err(e) => {
            tracing::error!(about, error = %e, "a message could not be built");
            return;
        }
    };
    let mut pauses = RETRIES.iter();
    loop {
        let sent = match transport {
            Transport::Smtp(smtp) => {
                smtp.send(message.clone()).await.map(|_| None).map_err(|e| e.to_string())
            }
            Transport::Outbox(outbox, dir) => outbox
                .send(message.clone())
                .await
                .map(|id| Some(dir.join(format!("{id}.eml"))))
                .map_err(|e| e.to_string()),
        };
        match sent {
            Ok(Some(file)) => {
                tracing::info!(about, file = %file.display(), "mail written to the outbox");
                return;
            }
            Ok(None) => {
                tracing::info!(about, "mail delivered");
                return;
            }
            Err(error) => match pauses.next() {
                Some(pause) => {
                    tracing::warn!(about, %error, retry_in_s = pause.as_secs(), "mail delivery failed");
                    tokio::time::sleep(*pause).await;
                }
                None => {
                    tracing::error!(about, %error, "mail delivery failed for good: the message is dropped");
                    return;
                }
            },
        }
    }
}
