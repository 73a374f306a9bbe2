//! What a list answer tells about the rest: `X-Total-Count` (the user's tasks matching the
//! filter, on all pages) and `Link` (`next`/`prev` pages), followed the way a client would.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Answer, UserClient};

fn total(answer: &Answer) -> i64 {
    answer.headers["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .expect("X-Total-Count is an integer")
}

/// The `rel` → target pairs of the `Link` header, empty when there is none.
fn links(answer: &Answer) -> Vec<(String, String)> {
    let Some(value) = answer.headers.get("link") else {
        return Vec::new();
    };
    value
        .to_str()
        .unwrap()
        .split(", ")
        .map(|part| {
            let (target, rel) = part.split_once("; rel=").expect("<target>; rel=\"...\"");
            let target = target.trim_start_matches('<').trim_end_matches('>');
            (rel.trim_matches('"').to_owned(), target.to_owned())
        })
        .collect()
}

fn target<'a>(links: &'a [(String, String)], rel: &str) -> Option<&'a str> {
    links
        .iter()
        .find(|(r, _)| r == rel)
        .map(|(_, t)| t.as_str())
}

fn titles(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn seed(user: &UserClient<'_>, n: usize) {
    for i in 0..n {
        user.create_titled(&format!("t{i:02}")).await;
    }
}

#[tokio::test]
async fn the_total_counts_the_users_matching_tasks_on_all_pages() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let bob = app.user("bob");
    seed(&alice, 5).await;
    seed(&bob, 7).await;
    let first = alice.list("?limit=2").await.body[0]["id"].as_i64().unwrap();
    assert_eq!(alice.complete(first, None).await.status, 200);

    let page = alice.list("?limit=2").await;
    assert_eq!(page.body.as_array().unwrap().len(), 2);
    assert_eq!(total(&page), 5, "all of alice's tasks, none of bob's");
    assert_eq!(total(&alice.list("?status=pending&limit=1").await), 4);
    assert_eq!(total(&alice.list("?status=completed").await), 1);
    assert_eq!(total(&bob.list("").await), 7);
    assert_eq!(total(&app.user("carol").list("").await), 0);
    let past_the_end = alice.list("?offset=50").await;
    assert_eq!(past_the_end.body, json!([]));
    assert_eq!(
        total(&past_the_end),
        5,
        "the total is there even on an empty page"
    );
}

#[tokio::test]
async fn a_list_that_fits_on_one_page_has_no_link_header() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    seed(&alice, 3).await;
    let answer = alice.list("").await;
    assert_eq!(total(&answer), 3);
    assert!(answer.headers.get("link").is_none(), "{:?}", answer.headers);
}

#[tokio::test]
async fn following_next_links_visits_every_task_once_and_prev_leads_back() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    seed(&alice, 7).await;
    app.user("bob").create_titled("not alice's").await;

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut next = Some(alice.path("?sort=title&limit=3&x=ignored"));
    while let Some(path_and_query) = next.take() {
        let answer = alice.send(http::Method::GET, &path_and_query, None).await;
        assert_eq!(answer.status, 200, "{path_and_query}");
        assert_eq!(total(&answer), 7);
        seen.extend(titles(&answer.body));
        let links = links(&answer);
        next = target(&links, "next").map(str::to_owned);
        pages.push((path_and_query, links));
        assert!(pages.len() <= 3, "three pages of 3, 3 and 1");
    }
    let expected: Vec<String> = (0..7).map(|i| format!("t{i:02}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(
        pages[1].0,
        alice.path("?status=all&sort=title&limit=3&offset=3"),
        "the link keeps the filter and sort, drops unknown parameters"
    );
    assert_eq!(
        target(&pages[0].1, "prev"),
        None,
        "the first page has no prev"
    );
    assert_eq!(target(&pages[2].1, "prev"), Some(pages[1].0.as_str()));
    assert_eq!(
        target(&pages[1].1, "prev"),
        Some(&*alice.path("?status=all&sort=title&limit=3&offset=0"))
    );
}

#[tokio::test]
async fn links_use_the_percent_encoded_path_the_client_sent() {
    let app = spawn_app().await;
    let odd = app.user("user/with space");
    seed(&odd, 2).await;
    let answer = odd.list("?limit=1").await;
    let links = links(&answer);
    let next = target(&links, "next").expect("a next page");
    assert_eq!(next, odd.path("?status=all&sort=created&limit=1&offset=1"));
    let followed = odd.send(http::Method::GET, next, None).await;
    assert_eq!(followed.status, 200);
    assert_eq!(titles(&followed.body), ["t01"]);
}
