//! Every way Better Auth ends a session (sign-out, revoke one, others, all, an admin's
//! revoke, ban and removal, a ban written to the row) is a durable row and a NOTIFY: the
//! Better Auth half of revocation, checked in SQL with no gateway involved.

use e2e::{
    better_auth::{decode_unverified, Session},
    revocation::{connect, Announcement, Listener, CHANNEL},
    stack::{Stack, StackOptions},
};
use serde_json::json;
use tokio_postgres::Client;

use crate::helpers::{admin, ban_by_row, session_token, WAKE};

/// Everything `feed` was told before a marker that `db` sends on the channel now: NOTIFYs
/// are delivered in commit order, so the announcements of every transaction `db` committed
/// before are among them, and nothing needs waiting for beyond the marker itself.
async fn announced_until_now(db: &Client, feed: &mut Listener) -> Vec<Announcement> {
    let marker = uuid::Uuid::new_v4().to_string();
    let payload = json!({ "kind": "marker", "subject": marker, "at": 0 }).to_string();
    db.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await
        .expect("send the marker");
    let mut seen = feed.expect(&[("marker", &marker)], WAKE).await;
    let last = seen.pop().expect("the marker");
    assert_eq!(last.subject, marker, "nothing follows the marker: {seen:?}");
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_better_auth_ends_a_session_is_recorded_and_announced() {
    let stack = Stack::start("revocation-feed", StackOptions::new("EdDSA")).await;
    let auth = stack.auth_url.as_str();
    let db = connect(&stack.auth_database_url).await;
    let mut feed = Listener::start(&stack.auth_database_url).await;
    let admin = admin(&stack, &db).await;
    let mut announced = Vec::new();

    // Tokens name their session, and keep every claim they had.
    let alice = Session::sign_up(auth, "alice").await;
    let sid = alice.session_id().await;
    let claims = decode_unverified(&alice.token().await).1;
    assert_eq!(claims["sid"], sid.as_str(), "{claims}");
    assert_eq!(claims["sub"], alice.user_id.as_str());
    for claim in [
        "id",
        "name",
        "email",
        "emailVerified",
        "createdAt",
        "iat",
        "exp",
        "iss",
        "aud",
    ] {
        assert!(claims.get(claim).is_some(), "{claim} kept: {claims}");
    }

    // Sign-out.
    alice.sign_out().await;
    announced.extend(feed.expect(&[("session", &sid)], WAKE).await);

    // Revoke one session from another.
    let phone = Session::sign_in(auth, &alice.email).await;
    let laptop = Session::sign_in(auth, &alice.email).await;
    let phone_sid = phone.session_id().await;
    let token = session_token(&laptop, &phone_sid).await;
    laptop
        .expect_post("revoke-session", json!({ "token": token }))
        .await;
    announced.extend(feed.expect(&[("session", &phone_sid)], WAKE).await);

    // Revoke the others, then all.
    let tablet = Session::sign_in(auth, &alice.email).await;
    let tablet_sid = tablet.session_id().await;
    laptop.expect_post("revoke-other-sessions", json!({})).await;
    announced.extend(feed.expect(&[("session", &tablet_sid)], WAKE).await);
    let laptop_sid = laptop.session_id().await;
    laptop.expect_post("revoke-sessions", json!({})).await;
    announced.extend(feed.expect(&[("session", &laptop_sid)], WAKE).await);

    // An admin revokes one of Bob's sessions, then all, then bans him.
    let bob = Session::sign_up(auth, "bob").await;
    let bob_sid = bob.session_id().await;
    let token = session_token(&bob, &bob_sid).await;
    admin
        .expect_post(
            "admin/revoke-user-session",
            json!({ "sessionToken": token }),
        )
        .await;
    announced.extend(feed.expect(&[("session", &bob_sid)], WAKE).await);
    let bob = Session::sign_in(auth, &bob.email).await;
    let bob_sid = bob.session_id().await;
    admin
        .expect_post(
            "admin/revoke-user-sessions",
            json!({ "userId": bob.user_id }),
        )
        .await;
    announced.extend(feed.expect(&[("session", &bob_sid)], WAKE).await);
    let bob = Session::sign_in(auth, &bob.email).await;
    let bob_sid = bob.session_id().await;
    admin
        .expect_post("admin/ban-user", json!({ "userId": bob.user_id }))
        .await;
    announced.extend(
        feed.expect(&[("user", &bob.user_id), ("session", &bob_sid)], WAKE)
            .await,
    );

    // An admin deletes Carol: her user and her session.
    let carol = Session::sign_up(auth, "carol").await;
    let carol_sid = carol.session_id().await;
    admin
        .expect_post("admin/remove-user", json!({ "userId": carol.user_id }))
        .await;
    announced.extend(
        feed.expect(&[("user", &carol.user_id), ("session", &carol_sid)], WAKE)
            .await,
    );

    // A ban written straight to the user row (another tool, a console): the same trigger, and
    // the user's sessions end with it, or they would go on minting tokens (the admin plugin
    // checks `banned` only when a session is made). Setting it again is no new ban and
    // announces nothing.
    let dave = Session::sign_up(auth, "dave").await;
    let dave_sid = dave.session_id().await;
    ban_by_row(&db, &dave.user_id).await;
    let banned = announced_until_now(&db, &mut feed).await;
    for (kind, subject) in [("user", &dave.user_id), ("session", &dave_sid)] {
        let times = banned
            .iter()
            .filter(|a| a.kind == kind && a.subject == *subject)
            .count();
        assert_eq!(times, 1, "{kind} {subject} announced once: {banned:?}");
    }
    announced.extend(banned);
    ban_by_row(&db, &dave.user_id).await;
    let again = announced_until_now(&db, &mut feed).await;
    assert!(
        again.is_empty(),
        "banning a banned user again announced {again:?}"
    );
    assert_eq!(
        dave.try_token().await,
        Err(reqwest::StatusCode::UNAUTHORIZED),
        "a user banned in the row alone still gets tokens"
    );

    // An admin who opened a session as another user (impersonation: the session is Erin's,
    // `impersonatedBy` names the admin) is banned: that session ends with the admin's own.
    let erin = Session::sign_up(auth, "erin").await;
    admin
        .expect_post("admin/impersonate-user", json!({ "userId": erin.user_id }))
        .await;
    let impersonations: Vec<String> = db
        .query(
            r#"SELECT id FROM "session" WHERE "impersonatedBy" = $1"#,
            &[&admin.user_id],
        )
        .await
        .expect("read the impersonation")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(impersonations.len(), 1, "{impersonations:?}");
    ban_by_row(&db, &admin.user_id).await;
    announced.extend(
        feed.expect(
            &[("user", &admin.user_id), ("session", &impersonations[0])],
            WAKE,
        )
        .await,
    );

    // A session deleted in a transaction held open: the revocation is stamped at the commit,
    // when the session is gone for everyone (until then it can still mint tokens), so the
    // gateways remember it long enough for the last of them.
    let gina = Session::sign_up(auth, "gina").await;
    let gina_sid = gina.session_id().await;
    let held = connect(&stack.auth_database_url).await;
    held.batch_execute("BEGIN").await.expect("begin");
    held.execute(r#"DELETE FROM "session" WHERE id = $1"#, &[&gina_sid])
        .await
        .expect("delete in a transaction");
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let committed_at: f64 = held
        .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
        .await
        .expect("the time of the commit")
        .get(0);
    held.batch_execute("COMMIT").await.expect("commit");
    let stamped = feed.expect(&[("session", &gina_sid)], WAKE).await;
    let at = stamped
        .iter()
        .find(|a| a.subject == gina_sid)
        .expect("gina's revocation")
        .at;
    assert!(
        at as f64 >= committed_at.floor(),
        "stamped at {at}, before the commit at {committed_at}"
    );
    announced.extend(stamped);

    // Sessions long expired (beyond any token lifetime a gateway accepts) are cleaned up
    // without a word: a first clean-up can delete years of them.
    let frank = Session::sign_up(auth, "frank").await;
    let frank_sid = frank.session_id().await;
    // Forty days passing, not an UPDATE that ends a live session (that one is recorded, see
    // below): in replica mode the triggers do not see it.
    db.batch_execute(&format!(
        r#"BEGIN; SET LOCAL session_replication_role = replica;
           UPDATE "session" SET "expiresAt" = now() - interval '40 days' WHERE id = '{frank_sid}';
           COMMIT"#
    ))
    .await
    .expect("age a session by forty days");
    let changed = db
        .execute(r#"DELETE FROM "session" WHERE id = $1"#, &[&frank_sid])
        .await
        .expect("clean up an expired session");
    assert_eq!(changed, 1, "the aged session was there to clean up");
    let cleaned = announced_until_now(&db, &mut feed).await;
    assert!(
        !cleaned
            .iter()
            .any(|a| a.subject == frank_sid || a.subject == frank.user_id),
        "deleting a session expired 40 days ago announced {cleaned:?}"
    );

    // Every announcement is a durable row, stamped now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    for a in &announced {
        assert!((now - 120..=now + 1).contains(&a.at), "{a:?} at {now}");
    }
    let rows: Vec<(String, String)> = db
        .query("SELECT kind, subject FROM auth_revocation", &[])
        .await
        .expect("read auth_revocation")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    for a in &announced {
        assert!(
            rows.contains(&(a.kind.clone(), a.subject.clone())),
            "{a:?} announced but not stored: {rows:?}"
        );
    }
    let daves = rows.iter().filter(|(_, s)| *s == dave.user_id).count();
    assert_eq!(daves, 1, "banning a banned user again records nothing");
    assert!(
        !rows.iter().any(|(_, s)| *s == frank_sid),
        "a session expired 40 days ago was recorded"
    );
}

/// The ids of the sessions `admin_id` opened as someone else (`impersonatedBy`).
async fn impersonations_by(db: &Client, admin_id: &str) -> Vec<String> {
    db.query(
        r#"SELECT id FROM "session" WHERE "impersonatedBy" = $1"#,
        &[&admin_id],
    )
    .await
    .expect("read the impersonations")
    .iter()
    .map(|row| row.get(0))
    .collect()
}

/// An admin signed in on two devices who, from the first, has opened one impersonation of a
/// user signed up as `victim`.
struct TwoDevices {
    admin: Session,
    sid: String,
    phone: Session,
    phone_sid: String,
    impersonation: String,
}

async fn admin_on_two_devices_impersonating(
    stack: &Stack,
    db: &Client,
    victim: &str,
) -> TwoDevices {
    let auth = stack.auth_url.as_str();
    let admin = admin(stack, db).await;
    let sid = admin.session_id().await;
    let phone = Session::sign_in(auth, &admin.email).await;
    let phone_sid = phone.session_id().await;
    let victim = Session::sign_up(auth, victim).await;
    admin
        .expect_post(
            "admin/impersonate-user",
            json!({ "userId": victim.user_id }),
        )
        .await;
    let mut opened = impersonations_by(db, &admin.user_id).await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    TwoDevices {
        admin,
        sid,
        phone,
        phone_sid,
        impersonation: opened.remove(0),
    }
}

/// An impersonation (a session of another user opened by an admin) lives only while its admin
/// is signed in somewhere and keeps the same role: revoking the admin's own sessions, or
/// demoting the admin with the admin plugin's set-role, ends it like any other session. Before,
/// only a ban or deletion of the admin did, and the impersonation went on minting the other
/// user's tokens for its hour.
#[tokio::test(flavor = "multi_thread")]
async fn an_impersonation_ends_when_its_admin_is_signed_out_everywhere_or_demoted() {
    let stack = Stack::start("revocation-impersonation", StackOptions::new("EdDSA")).await;
    let auth = stack.auth_url.as_str();
    let db = connect(&stack.auth_database_url).await;
    let mut feed = Listener::start(&stack.auth_database_url).await;
    let boss = admin(&stack, &db).await;

    // Ann, an admin signed in on two devices, impersonates Erin from the first.
    let TwoDevices {
        admin: ann,
        sid: ann_sid,
        phone: ann_phone,
        phone_sid: ann_phone_sid,
        impersonation,
    } = admin_on_two_devices_impersonating(&stack, &db, "erin").await;
    let impersonation = vec![impersonation];

    // Signing out on the phone leaves her signed in on the first device: the impersonation
    // stays, as that session does.
    ann_phone.sign_out().await;
    let signed_out = announced_until_now(&db, &mut feed).await;
    assert!(
        signed_out.iter().any(|a| a.subject == ann_phone_sid),
        "{signed_out:?}"
    );
    assert!(
        !signed_out.iter().any(|a| a.subject == impersonation[0]),
        "one sign-out of two ended the impersonation: {signed_out:?}"
    );
    assert_eq!(impersonations_by(&db, &ann.user_id).await, impersonation);

    // Another admin revokes Ann's sessions: her impersonation of Erin ends with them.
    boss.expect_post(
        "admin/revoke-user-sessions",
        json!({ "userId": ann.user_id }),
    )
    .await;
    feed.expect(
        &[("session", &ann_sid), ("session", &impersonation[0])],
        WAKE,
    )
    .await;
    assert!(impersonations_by(&db, &ann.user_id).await.is_empty());

    // Bob, an admin, impersonates Gus and is then demoted: the impersonation ends, Bob's own
    // session does not.
    let bob = admin(&stack, &db).await;
    let bob_sid = bob.session_id().await;
    let gus = Session::sign_up(auth, "gus").await;
    bob.expect_post("admin/impersonate-user", json!({ "userId": gus.user_id }))
        .await;
    let impersonation = impersonations_by(&db, &bob.user_id).await;
    assert_eq!(impersonation.len(), 1, "{impersonation:?}");
    boss.expect_post(
        "admin/set-role",
        json!({ "userId": bob.user_id, "role": "user" }),
    )
    .await;
    let demoted = announced_until_now(&db, &mut feed).await;
    assert!(
        demoted.iter().any(|a| a.subject == impersonation[0]),
        "demoting the admin left the impersonation: {demoted:?}"
    );
    assert!(!demoted.iter().any(|a| a.subject == bob_sid), "{demoted:?}");
    bob.token().await;

    let rows: Vec<String> = db
        .query(
            "SELECT subject FROM auth_revocation WHERE kind = 'session'",
            &[],
        )
        .await
        .expect("read auth_revocation")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(rows.contains(&impersonation[0]), "{rows:?}");

    // Carl, an admin on two devices, impersonates Hank; his two sessions end in two
    // transactions committing at once, where each, under READ COMMITTED, would find the
    // other's session still live and leave the impersonation. The checks for one admin take
    // turns under a lock: held here until both commits wait on it, then let go.
    let TwoDevices {
        admin: carl,
        sid: carl_sid,
        phone_sid: carl_phone_sid,
        ..
    } = admin_on_two_devices_impersonating(&stack, &db, "hank").await;
    let checks_lock = "hashtextextended('auth_revocation.impersonator:' || $1, 0)";
    let holder = connect(&stack.auth_database_url).await;
    holder
        .execute(
            &format!("SELECT pg_advisory_lock({checks_lock})"),
            &[&carl.user_id],
        )
        .await
        .expect("take the checks' lock");
    let mut commits = Vec::new();
    for sid in [carl_sid, carl_phone_sid] {
        let mut client = connect(&stack.auth_database_url).await;
        commits.push(tokio::spawn(async move {
            let tx = client.transaction().await.expect("begin");
            tx.execute(r#"DELETE FROM "session" WHERE id = $1"#, &[&sid])
                .await
                .expect("delete one of carl's sessions");
            tx.commit().await.expect("commit");
        }));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                &[],
            )
            .await
            .expect("read pg_locks")
            .get(0);
        if waiting == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the two commits never waited for the checks' lock ({waiting} waiting)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    holder
        .execute(
            &format!("SELECT pg_advisory_unlock({checks_lock})"),
            &[&carl.user_id],
        )
        .await
        .expect("let the checks go");
    for commit in commits {
        commit.await.expect("a commit");
    }
    assert!(
        impersonations_by(&db, &carl.user_id).await.is_empty(),
        "two sign-outs at once left the impersonation"
    );
}

/// Two ways of ending sessions that fire no row-level DELETE trigger. Moving a session's
/// expiry to now (Better Auth's `preserveSessionInDatabase` does) is recorded like a
/// deletion, while moving it later (a refresh) is not. TRUNCATE, which would end every session
/// and tell no gateway, is refused with a pointer to DELETE.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_ended_by_expiring_it_is_recorded_and_truncate_is_refused() {
    let stack = Stack::start("revocation-expire", StackOptions::new("EdDSA")).await;
    let auth = stack.auth_url.as_str();
    let db = connect(&stack.auth_database_url).await;
    let mut feed = Listener::start(&stack.auth_database_url).await;

    let hal = Session::sign_up(auth, "hal").await;
    let hal_sid = hal.session_id().await;
    let ivy = Session::sign_up(auth, "ivy").await;
    let ivy_sid = ivy.session_id().await;
    let set_expiry =
        r#"UPDATE "session" SET "expiresAt" = now() + $2::text::interval WHERE id = $1"#;
    let changed = db
        .execute(set_expiry, &[&ivy_sid, &"30 days"])
        .await
        .expect("refresh ivy's session");
    assert_eq!(changed, 1);
    let changed = db
        .execute(set_expiry, &[&hal_sid, &"0 seconds"])
        .await
        .expect("expire hal's session");
    assert_eq!(changed, 1);
    let expired = announced_until_now(&db, &mut feed).await;
    let hals = expired.iter().filter(|a| a.subject == hal_sid).count();
    assert_eq!(hals, 1, "hal's expired session announced once: {expired:?}");
    assert!(
        !expired.iter().any(|a| a.subject == ivy_sid),
        "a refresh announced {expired:?}"
    );
    let stored: i64 = db
        .query_one(
            "SELECT count(*) FROM auth_revocation WHERE kind = 'session' AND subject = $1",
            &[&hal_sid],
        )
        .await
        .expect("read auth_revocation")
        .get(0);
    assert_eq!(stored, 1);
    assert_eq!(
        hal.try_token().await,
        Err(reqwest::StatusCode::UNAUTHORIZED),
        "an expired session still mints tokens"
    );

    for statement in [r#"TRUNCATE "session""#, r#"TRUNCATE "user" CASCADE"#] {
        let refused = db
            .batch_execute(statement)
            .await
            .expect_err("TRUNCATE is refused");
        let refused = refused.as_db_error().expect("refused by the database");
        assert!(
            refused
                .hint()
                .is_some_and(|hint| hint.contains("DELETE FROM")),
            "{statement}: {refused:?}"
        );
    }
    let sessions: i64 = db
        .query_one(r#"SELECT count(*) FROM "session""#, &[])
        .await
        .expect("count sessions")
        .get(0);
    assert!(sessions >= 1, "the sessions are still there");
    ivy.token().await;
}
