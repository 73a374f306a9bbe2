//! The revocation feed: one PostgreSQL connection to Better Auth's database that listens on
//! `auth_revocation`, loads every revocation still within the window whenever it
//! (re)connects, then applies what each notification announces as it arrives.
//!
//! `LISTEN` comes before the load, so a revocation committed in between is both loaded and
//! notified (applying one twice changes nothing) and none falls between the two.
//!
//! A notification is taken as news of a row, not as the revocation itself: its kind and
//! subject are looked up in `auth_revocation` and what the table says is applied. `NOTIFY`
//! needs no privilege, so any login to Better Auth's database (the gateways' read-only one
//! included) could otherwise announce a sign-out that never happened, dated centuries ahead,
//! and it would refuse that user at every replica until each restarted; the table only
//! Better Auth's triggers write. The lookup runs beside the notifications and the pings, and
//! one left unanswered counts as a silent connection, as a ping's query does.
//!
//! A lost connection is retried with backoff (100 ms doubling to 2 s). Every `PING_EVERY`
//! the feed notifies a channel only its own connection listens on (so N replicas cost N pings
//! a round, not N² deliveries) and expects that notification back by the next ping: a silent
//! connection is caught, and so is one that answers queries but never delivers
//! notifications (a transaction-pooling proxy such as PgBouncer runs `LISTEN` on whichever
//! server connection it lends, so nothing comes back). The ping is sent from a second
//! connection of the feed's own, as Better Auth's sign-outs are sent from other sessions: a
//! session's own notifications reach it before its statement's end, while such a pooler still
//! lends it the server connection, and would come back through a pooler that drops every
//! other session's, the revocations among them. A connection counts as up only once
//! its first ping has come back: loading the window proves that queries work, not that
//! revocations will arrive, and a deaf connection taken as up would clear the loss clock at
//! every reconnection and never fail closed. While it is down, `Revocations::health` counts
//! from the loss.

use std::{
    future::Future,
    pin::{pin, Pin},
    time::Duration,
};

use futures_util::StreamExt;
use proto_shared::postgres_tls::{self, Tls};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_postgres::{tls::MakeTlsConnect, AsyncMessage, Client, NoTls, Row, Socket};
use tokio_util::sync::CancellationToken;

use super::{unix_now, Kind, Revocations};

/// The channel the triggers notify and the table they write (`revocation.sql`).
const CHANNEL: &str = "auth_revocation";
/// How often the connection is proven to deliver notifications, and expired entries dropped;
/// a ping's notification must be back by the next.
const PING_EVERY: Duration = Duration::from_secs(2);
/// How long a ping's query may go unanswered: until the next ping is due.
const PING_TIMEOUT: Duration = PING_EVERY;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The most a (re)connection may take from connecting to listening with the window loaded.
/// `CONNECT_TIMEOUT` bounds only the socket's connect: a server (or a pooler, or a half-open
/// path) that accepts and then says nothing would otherwise hold the feed, and with it every
/// protected request's 503, until the gateway restarted. Room for a TLS handshake and a
/// managed database waking from scale-to-zero (seconds).
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(2);
/// After a connection that delivered no notifications: such a database URL stays deaf until
/// someone changes it, so retrying (and reloading) every few seconds would only load the
/// database.
const DEAF_RETRY: Duration = Duration::from_secs(30);
/// How long a loaded connection must have lasted for the retry after its loss to start at
/// `FIRST_RETRY` again.
const STAYED_UP: Duration = Duration::from_secs(10);
/// Rows applied per write-lock while loading.
const LOAD_BATCH: usize = 1024;

/// One notification's payload, as `revocation.sql` writes it, or as a ping does (kind
/// `ping`, the ping's id as subject). Its `at` is not read: the table's row dates it.
#[derive(Debug, Deserialize)]
struct Notified {
    kind: String,
    subject: String,
}

/// What a notification says.
#[derive(Debug, PartialEq, Eq)]
enum Notice {
    /// A row of this kind and subject was written: to be looked up.
    Revoked(Kind, String),
    /// A ping: this connection's own, or (from a replica of an earlier version, which pinged
    /// on the shared channel) another's, which is ignored.
    Ping(String),
}

/// Why a feed connection ended.
#[derive(Debug, thiserror::Error)]
enum FeedError {
    #[error("{0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the connection closed")]
    Closed,
    #[error("no answer to a ping within {0:?}")]
    Silent(Duration),
    #[error("connecting, listening and loading took longer than {0:?}")]
    Stalled(Duration),
    #[error(
        "a ping's notification did not come back within {0:?}: notifications are not \
         delivered on this connection (is REVOCATION_DATABASE_URL a transaction-pooling \
         proxy? LISTEN needs a session of its own)"
    )]
    Deaf(Duration),
}

/// Runs the feed until `shutdown` is cancelled.
pub(super) async fn run(revocations: Revocations, shutdown: CancellationToken) {
    let mut retry = FIRST_RETRY;
    loop {
        let mut loaded = false;
        let began = tokio::time::Instant::now();
        let ended = tokio::select! {
            ended = listen(&revocations, &mut loaded) => ended,
            () = shutdown.cancelled() => return,
        };
        revocations.lost(unix_now());
        if let FeedError::Deaf(_) = &ended {
            // A setting to fix, not a blip: say so loudly, and do not reload the whole window
            // every few seconds meanwhile.
            tracing::error!(error = %ended, "revocation feed deaf; protected requests get 503 once REVOCATION_STALE_SECS have passed");
            tokio::select! {
                () = tokio::time::sleep(DEAF_RETRY) => {}
                () = shutdown.cancelled() => return,
            }
            continue;
        }
        match &ended {
            FeedError::Postgres(error)
                if error
                    .as_db_error()
                    .is_some_and(|db| db.code().code() == "42P01") =>
            {
                tracing::error!(
                    "revocation feed: Better Auth's database has no auth_revocation table; \
                     apply deploy/better-auth/revocation.sql to it (protected requests get 503 \
                     until then)"
                );
            }
            FeedError::Postgres(error) => {
                tracing::warn!(error = %proto_shared::telemetry::error_chain(error), "revocation feed lost; reconnecting");
            }
            other => tracing::warn!(error = %other, "revocation feed lost; reconnecting"),
        }
        // Every loss waits its turn, a closed or silent connection too, and the wait starts
        // short again only after a connection that stayed up: a server or proxy that lets the
        // set-up finish and then drops the connection would otherwise have the whole window
        // reloaded back to back.
        if loaded && began.elapsed() >= STAYED_UP {
            retry = FIRST_RETRY;
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = shutdown.cancelled() => return,
        }
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// One connection's life: listen, load, then apply notifications until it fails.
/// Sets `loaded` (and marks the set loaded) once the first ping has come back.
async fn listen(revocations: &Revocations, loaded: &mut bool) -> FeedError {
    match listen_inner(revocations, loaded).await {
        Ok(never) => match never {},
        Err(error) => error,
    }
}

async fn listen_inner(
    revocations: &Revocations,
    loaded: &mut bool,
) -> Result<std::convert::Infallible, FeedError> {
    let Listening {
        client,
        pinger,
        mut received,
        ping_channel,
        connection_id,
        entries,
    } = tokio::time::timeout(SETUP_TIMEOUT, set_up(revocations))
        .await
        .map_err(|_| FeedError::Stalled(SETUP_TIMEOUT))??;

    let mut pings = 0u64;
    // The id of the ping whose notification has not come back yet, and the ping's query while
    // it has not been answered: polled beside the notifications, so that neither waits on
    // the other.
    let mut awaited: Option<String> = None;
    let mut query: Option<PingQuery<'_>> = None;
    // The lookup of announced revocations in the table while it is out, polled beside the
    // rest the same way, and those announced meanwhile, looked up when it is back.
    let mut lookup: Option<LookUp<'_>> = None;
    let mut announced: Vec<(Kind, String)> = Vec::new();
    // Whether a revocation came since the last tick: a burst of them (many sessions ended at
    // once) can hold a ping's answer and its notification back past the next tick, and a
    // connection that delivers revocations is neither silent nor deaf.
    let mut heard = false;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            payload = received.recv() => {
                let mut payload = payload.ok_or(FeedError::Closed)?;
                // Every notification already here, looked up together: a burst (many
                // sessions ended at once) costs a query per batch, not per revocation.
                loop {
                    match parse(&payload) {
                        Some(Notice::Revoked(kind, subject)) => announced.push((kind, subject)),
                        Some(Notice::Ping(id)) => {
                            if awaited.as_deref() == Some(id.as_str()) {
                                awaited = None;
                                if !*loaded {
                                    // Notifications arrive: from here the set is what the
                                    // database says, and stays so while pings come back.
                                    *loaded = true;
                                    revocations.loaded(unix_now());
                                    tracing::info!(entries, "revocation feed loaded and listening");
                                }
                            }
                        }
                        None => tracing::warn!("revocation feed: a notification that is not a revocation was ignored"),
                    }
                    if announced.len() >= LOAD_BATCH {
                        break;
                    }
                    match received.try_recv() {
                        Ok(next) => payload = next,
                        Err(_) => break,
                    }
                }
                if !announced.is_empty() {
                    heard = true;
                    if lookup.is_none() {
                        lookup = Some(Box::pin(look_up(&client, revocations, std::mem::take(&mut announced))));
                    }
                }
            }
            looked_up = async { lookup.as_mut().expect("polled only while a lookup is out").await }, if lookup.is_some() => {
                lookup = None;
                looked_up?;
                if !announced.is_empty() {
                    lookup = Some(Box::pin(look_up(&client, revocations, std::mem::take(&mut announced))));
                }
            }
            answered = async { query.as_mut().expect("polled only while a query is out").await }, if query.is_some() => {
                query = None;
                let database_now = answered?.try_get(0)?;
                revocations.database_clock(database_now, unix_now());
            }
            _ = ping.tick() => {
                let heard_since = std::mem::take(&mut heard);
                // A query (the ping's or a lookup) unanswered, or a ping's notification not
                // back, since the last tick, with nothing heard meanwhile: the connection is
                // silent or deaf. Still delivering revocations, it is neither.
                let unanswered = query.is_some() || lookup.is_some();
                if (unanswered || awaited.is_some()) && !heard_since {
                    return Err(if unanswered {
                        FeedError::Silent(PING_TIMEOUT)
                    } else {
                        FeedError::Deaf(PING_EVERY)
                    });
                }
                if query.is_some() || awaited.is_some() {
                    // Wait on for the ping behind the revocations.
                    continue;
                }
                pings += 1;
                let id = format!("{connection_id}-{pings}");
                let payload = serde_json::json!({"kind": "ping", "subject": id, "at": 0}).to_string();
                let pinger = &pinger;
                let channel = ping_channel.as_str();
                query = Some(Box::pin(async move {
                    pinger
                        .query_one(
                            "SELECT floor(extract(epoch FROM clock_timestamp()))::bigint \
                             FROM (SELECT pg_notify($1, $2)) AS sent",
                            &[&channel, &payload],
                        )
                        .await
                }));
                awaited = Some(id);
                revocations.expire(unix_now());
            }
        }
    }
}

/// A ping's query (`pg_notify` to the ping channel, with the database's clock) while it is
/// out, on the pinging connection `'c`.
type PingQuery<'c> = Pin<Box<dyn Future<Output = Result<Row, tokio_postgres::Error>> + Send + 'c>>;

/// The database's clock, in whole Unix seconds as its revocation times are.
const DATABASE_NOW: &str = "SELECT floor(extract(epoch FROM clock_timestamp()))::bigint";

/// A lookup of announced revocations ([`look_up`]) while it is out, on the connection `'c`.
type LookUp<'c> = Pin<Box<dyn Future<Output = Result<(), FeedError>> + Send + 'c>>;

/// A connection listening on its channels, with the window loaded.
struct Listening {
    client: Client,
    /// The connection pings are sent from: another session than the listening one.
    pinger: Client,
    /// Every notification's payload; closes when the connection ends.
    received: mpsc::UnboundedReceiver<String>,
    /// Where this connection's pings go: a channel only it listens on.
    ping_channel: String,
    /// Part of every ping's id.
    connection_id: String,
    /// Rows loaded.
    entries: usize,
}

/// Connects, checks what the login may do, listens, and loads the window into the set (not
/// yet marking it loaded: its first ping does). Bounded by `SETUP_TIMEOUT` at its caller.
async fn set_up(revocations: &Revocations) -> Result<Listening, FeedError> {
    let config = revocations.config();
    let mut pg = postgres_tls::parse_url(&config.database_url)
        .expect("REVOCATION_DATABASE_URL was validated at start");
    pg.application_name("gateway-revocation")
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives_idle(Duration::from_secs(10));
    let (client, received) = match &config.tls {
        Tls::Plain => connect(&pg, NoTls).await?,
        Tls::Rustls(tls) => connect(&pg, tls.clone()).await?,
    };

    // The feed only reads; a login that could also write the table (or bypass row-level
    // security, or is a superuser, or can read Better Auth's sessions, whose tokens sign in,
    // or its accounts' password hashes: the owner's login reused here, say) works, but puts
    // far more than it needs in the gateway's hands: said at every connection, and shown as
    // a gauge to alert on.
    let privileged: bool = client
        .query_one(
            "SELECT rolsuper OR rolbypassrls OR coalesce(has_table_privilege(\
             to_regclass('auth_revocation'), 'INSERT, UPDATE, DELETE, TRUNCATE'), false) \
             OR coalesce(has_table_privilege(to_regclass('\"session\"'), 'SELECT'), false) \
             OR coalesce(has_table_privilege(to_regclass('\"account\"'), 'SELECT'), false) \
             FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?
        .try_get(0)?;
    revocations.login_privileged(privileged);
    if privileged {
        tracing::warn!(
            "REVOCATION_DATABASE_URL logs in as a role that can write auth_revocation, bypass \
             row-level security or read Better Auth's sessions or accounts; give the gateway a \
             role with SELECT on auth_revocation only (deploy/better-auth/README.md)"
        );
    }
    // This connection's pings: an id no other replica's connection shares, and a channel of
    // its own, so that no other replica is woken by them.
    let connection_id = uuid::Uuid::new_v4().simple().to_string();
    let ping_channel = format!("{CHANNEL}_ping_{connection_id}");
    client
        .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {ping_channel}"))
        .await?;
    let mut ping_pg = pg.clone();
    ping_pg.application_name("gateway-revocation-ping");
    let pinger = match &config.tls {
        Tls::Plain => connect_quietly(&ping_pg, NoTls).await?,
        Tls::Rustls(tls) => connect_quietly(&ping_pg, tls.clone()).await?,
    };
    // The database's clock against this host's, before its times are taken in (and again at
    // every ping): revocations are remembered by this host's clock.
    let database_now: i64 = client.query_one(DATABASE_NOW, &[]).await?.try_get(0)?;
    revocations.database_clock(database_now, unix_now());
    // Streamed in batches rather than collected: 100,000 rows held at once as `Row`s would
    // cost the process tens of megabytes at every (re)connection.
    let window = config.remembered_for().as_secs_f64();
    let rows = client
        .query_raw(
            "SELECT kind, subject, floor(extract(epoch FROM revoked_at))::bigint \
             FROM auth_revocation WHERE revoked_at > now() - $1 * interval '1 second'",
            [&window as &(dyn tokio_postgres::types::ToSql + Sync)],
        )
        .await?;
    let mut rows = pin!(rows.chunks(LOAD_BATCH));
    let mut count = 0;
    while let Some(batch) = rows.next().await {
        let batch = batch.into_iter().collect::<Result<Vec<_>, _>>()?;
        count += batch.len();
        revocations.apply(revoked(&batch)?, unix_now());
    }
    Ok(Listening {
        client,
        pinger,
        received,
        ping_channel,
        connection_id,
        entries: count,
    })
}

/// The revocations `rows` hold (kind, subject, whole epoch seconds). A row that cannot be
/// read fails the load or the lookup (the feed is then lost and retried), never a panic: a
/// set missing a revocation must not pass for a loaded one.
fn revoked(rows: &[Row]) -> Result<Vec<(Kind, &str, i64)>, tokio_postgres::Error> {
    let mut revoked = Vec::with_capacity(rows.len());
    for row in rows {
        let (kind, subject, at) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if let Some(kind) = Kind::parse(kind) {
            revoked.push((kind, subject, at));
        }
    }
    Ok(revoked)
}

/// Applies what `auth_revocation` holds, within the window, for the kinds and subjects
/// `announced`: each one's latest revocation. Announcements with no such row (a `NOTIFY`
/// the triggers did not send) change nothing, and are logged.
async fn look_up<'c>(
    client: &'c Client,
    revocations: &'c Revocations,
    announced: Vec<(Kind, String)>,
) -> Result<(), FeedError> {
    let kinds: Vec<&str> = announced.iter().map(|(kind, _)| kind.as_str()).collect();
    let subjects: Vec<&str> = announced
        .iter()
        .map(|(_, subject)| subject.as_str())
        .collect();
    let window = revocations.config().remembered_for().as_secs_f64();
    let rows = client
        .query(
            "SELECT r.kind, r.subject, floor(extract(epoch FROM max(r.revoked_at)))::bigint \
             FROM auth_revocation r \
             JOIN unnest($1::text[], $2::text[]) AS a(kind, subject) \
               ON r.kind = a.kind AND r.subject = a.subject \
             WHERE r.revoked_at > now() - $3 * interval '1 second' \
             GROUP BY r.kind, r.subject",
            &[&kinds, &subjects, &window],
        )
        .await?;
    let found = revoked(&rows)?;
    let distinct = kinds
        .iter()
        .zip(&subjects)
        .collect::<std::collections::HashSet<_>>()
        .len();
    if found.len() < distinct {
        tracing::warn!(
            ignored = distinct - found.len(),
            "revocation feed: announced revocations with no row in auth_revocation were \
             ignored (something other than revocation.sql's triggers sends NOTIFY on \
             auth_revocation)"
        );
    }
    revocations.apply(found, unix_now());
    Ok(())
}

/// Connects, and passes every notification's payload to the receiver, which closes when the
/// connection ends.
async fn connect<T>(
    pg: &tokio_postgres::Config,
    tls: T,
) -> Result<(Client, mpsc::UnboundedReceiver<String>), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = pg.connect(tls).await?;
    let (notifications, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = pin!(futures_util::stream::poll_fn(
            move |cx| connection.poll_message(cx)
        ));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(notification) = message {
                if notifications
                    .send(notification.payload().to_owned())
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    Ok((client, received))
}

/// Connects a session that hears nothing: the pings' (its connection ends with its client).
async fn connect_quietly<T>(
    pg: &tokio_postgres::Config,
    tls: T,
) -> Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = pg.connect(tls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// What a notification's payload says, if it is one the feed knows.
fn parse(payload: &str) -> Option<Notice> {
    let notified: Notified = serde_json::from_str(payload).ok()?;
    if notified.kind == "ping" {
        return Some(Notice::Ping(notified.subject));
    }
    Some(Notice::Revoked(
        Kind::parse(&notified.kind)?,
        notified.subject,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_read_as_the_triggers_write_them() {
        assert_eq!(
            parse(r#"{"kind" : "session", "subject" : "abc", "at" : 1764000000}"#),
            Some(Notice::Revoked(Kind::Session, "abc".to_owned()))
        );
        assert_eq!(
            parse(r#"{"kind":"user","subject":"u1","at":1}"#),
            Some(Notice::Revoked(Kind::User, "u1".to_owned()))
        );
        assert_eq!(
            parse(r#"{"kind":"ping","subject":"c0ffee-3","at":0}"#),
            Some(Notice::Ping("c0ffee-3".to_owned()))
        );
        for bad in [
            "",
            "{}",
            r#"{"kind":"team","subject":"x","at":1}"#,
            r#"{"kind":"user","subject":1,"at":1}"#,
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
