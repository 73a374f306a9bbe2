//! Random sequences of operations by three users, run against the service and against a
//! simple in-memory model of it; any difference in status or content fails the test.

use std::collections::BTreeMap;

use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

const USERS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Create {
        user: usize,
        title: String,
        description: Option<String>,
    },
    Update {
        user: usize,
        task: usize,
        title: Option<String>,
        description: Option<Option<String>>,
        completed: Option<bool>,
    },
    Complete {
        user: usize,
        task: usize,
        set: Option<bool>,
    },
    Delete {
        user: usize,
        task: usize,
    },
    Get {
        user: usize,
        task: usize,
    },
    List {
        user: usize,
        status: usize,
        sort: usize,
    },
}

fn title() -> impl Strategy<Value = String> {
    // Mostly valid (with spaces to trim), sometimes blank (422).
    prop_oneof![9 => "[ ]?[a-zA-Z][a-zA-Z ]{0,8}", 1 => "[ ]{0,3}"]
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    let task = any::<usize>();
    prop_oneof![
        3 => (user.clone(), title(), proptest::option::of("[a-z ]{0,10}"))
            .prop_map(|(user, title, description)| Op::Create { user, title, description }),
        2 => (user.clone(), task, proptest::option::of(title()),
              proptest::option::of(proptest::option::of("[a-z]{0,6}")), proptest::option::of(any::<bool>()))
            .prop_map(|(user, task, title, description, completed)| Op::Update { user, task, title, description, completed }),
        2 => (user.clone(), task, proptest::option::of(any::<bool>()))
            .prop_map(|(user, task, set)| Op::Complete { user, task, set }),
        1 => (user.clone(), task).prop_map(|(user, task)| Op::Delete { user, task }),
        2 => (user.clone(), task).prop_map(|(user, task)| Op::Get { user, task }),
        2 => (user, 0..3usize, 0..4usize).prop_map(|(user, status, sort)| Op::List { user, status, sort }),
    ]
}

#[derive(Debug, Clone)]
struct ModelTask {
    user: usize,
    title: String,
    description: Option<String>,
    completed: bool,
    /// Logical time of the last change, standing in for `updated_at`.
    changed: u64,
}

#[derive(Debug, Default)]
struct Model {
    tasks: BTreeMap<i64, ModelTask>,
    /// Every id ever created, so operations also hit deleted and other users' tasks.
    known: Vec<i64>,
    clock: u64,
}

impl Model {
    fn pick(&self, index: usize) -> i64 {
        if self.known.is_empty() {
            i64::MAX / 2 // never exists
        } else {
            self.known[index % self.known.len()]
        }
    }

    fn owned(&self, user: usize, id: i64) -> bool {
        self.tasks.get(&id).is_some_and(|t| t.user == user)
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

fn expect_task(body: &Value, id: i64, task: &ModelTask, user: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(body["id"].as_i64(), Some(id));
    prop_assert_eq!(body["user_id"].as_str(), Some(user));
    prop_assert_eq!(body["title"].as_str(), Some(task.title.as_str()));
    prop_assert_eq!(body["description"].as_str(), task.description.as_deref());
    prop_assert_eq!(body["completed"].as_bool(), Some(task.completed));
    Ok(())
}

async fn run_case(app: &TestApp, case: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let names: Vec<String> = (0..USERS).map(|u| format!("case{case}-user{u}")).collect();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Create {
                user,
                title,
                description,
            } => {
                let client = app.user(&names[user]);
                let answer = client
                    .create(json!({"title": title, "description": description}))
                    .await;
                let trimmed = title.trim();
                if trimmed.is_empty() {
                    prop_assert_eq!(answer.status, 422);
                    continue;
                }
                prop_assert_eq!(answer.status, 201);
                let id = answer.body["id"].as_i64().unwrap();
                let changed = model.tick();
                let task = ModelTask {
                    user,
                    title: trimmed.to_owned(),
                    description,
                    completed: false,
                    changed,
                };
                expect_task(&answer.body, id, &task, &names[user])?;
                model.tasks.insert(id, task);
                model.known.push(id);
            }
            Op::Update {
                user,
                task,
                title,
                description,
                completed,
            } => {
                let id = model.pick(task);
                let mut body = serde_json::Map::new();
                if let Some(t) = &title {
                    body.insert("title".into(), json!(t));
                }
                if let Some(d) = &description {
                    body.insert("description".into(), json!(d));
                }
                if let Some(c) = completed {
                    body.insert("completed".into(), json!(c));
                }
                let answer = app.user(&names[user]).update(id, Value::Object(body)).await;
                if title.as_ref().is_some_and(|t| t.trim().is_empty()) {
                    prop_assert_eq!(answer.status, 422);
                } else if model.owned(user, id) {
                    prop_assert_eq!(answer.status, 200);
                    let changed = model.tick();
                    let stored = model.tasks.get_mut(&id).unwrap();
                    if let Some(t) = title {
                        stored.title = t.trim().to_owned();
                    }
                    if let Some(d) = description {
                        stored.description = d;
                    }
                    if let Some(c) = completed {
                        stored.completed = c;
                    }
                    stored.changed = changed;
                    expect_task(&answer.body, id, stored, &names[user])?;
                } else {
                    prop_assert_eq!(answer.status, 404);
                }
            }
            Op::Complete { user, task, set } => {
                let id = model.pick(task);
                let body = set.map(|c| json!({"completed": c}));
                let answer = app.user(&names[user]).complete(id, body).await;
                if model.owned(user, id) {
                    prop_assert_eq!(answer.status, 200);
                    let changed = model.tick();
                    let stored = model.tasks.get_mut(&id).unwrap();
                    stored.completed = set.unwrap_or(!stored.completed);
                    stored.changed = changed;
                    expect_task(&answer.body, id, stored, &names[user])?;
                } else {
                    prop_assert_eq!(answer.status, 404);
                }
            }
            Op::Delete { user, task } => {
                let id = model.pick(task);
                let answer = app.user(&names[user]).delete(id).await;
                if model.owned(user, id) {
                    prop_assert_eq!(answer.status, 204);
                    model.tasks.remove(&id);
                } else {
                    prop_assert_eq!(answer.status, 404);
                }
            }
            Op::Get { user, task } => {
                let id = model.pick(task);
                let answer = app.user(&names[user]).get(id).await;
                if model.owned(user, id) {
                    prop_assert_eq!(answer.status, 200);
                    expect_task(&answer.body, id, &model.tasks[&id], &names[user])?;
                } else {
                    prop_assert_eq!(answer.status, 404);
                }
            }
            Op::List { user, status, sort } => {
                let status_name = ["all", "pending", "completed"][status];
                let sort_name = ["created", "-created", "title", "updated"][sort];
                let answer = app
                    .user(&names[user])
                    .list(&format!("?status={status_name}&sort={sort_name}"))
                    .await;
                prop_assert_eq!(answer.status, 200);
                let mut expected: Vec<(i64, &ModelTask)> = model
                    .tasks
                    .iter()
                    .filter(|(_, t)| t.user == user)
                    .filter(|(_, t)| status == 0 || t.completed == (status == 2))
                    .map(|(id, t)| (*id, t))
                    .collect();
                match sort {
                    0 => expected.sort_by_key(|(id, _)| *id),
                    1 => expected.sort_by_key(|(id, _)| std::cmp::Reverse(*id)),
                    2 => expected.sort_by(|a, b| {
                        (a.1.title.to_ascii_lowercase(), a.0)
                            .cmp(&(b.1.title.to_ascii_lowercase(), b.0))
                    }),
                    _ => expected.sort_by_key(|(id, t)| std::cmp::Reverse((t.changed, *id))),
                }
                let got = answer.body.as_array().unwrap();
                prop_assert_eq!(got.len(), expected.len(), "{} {}", status_name, sort_name);
                for (body, (id, task)) in got.iter().zip(&expected) {
                    expect_task(body, *id, task, &names[user])?;
                }
            }
        }
    }
    Ok(())
}

#[test]
fn random_operations_by_three_users_match_the_in_memory_model() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // One service and database for the whole test; each case uses its own three users.
    let app = runtime.block_on(spawn_app());
    let mut runner = TestRunner::new(Config {
        cases: 16,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicU64::new(0);
    let result = runner.run(&proptest::collection::vec(op(), 1..30), |ops| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime.block_on(run_case(&app, case, ops))
    });
    drop(app);
    if let Err(e) = result {
        panic!("{e}");
    }
}
