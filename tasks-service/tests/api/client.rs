//! proto-shared's typed client, as an in-cluster service would use it, against the service.

use proto_shared::{
    client::{ClientError, ListParams, TasksClient},
    Audience, CreateTask, Signer, SortOrder, StatusFilter, UpdateTask, UserId,
};

use crate::helpers::{ring, spawn_app, REPORTS_KEY};

#[tokio::test]
async fn the_typed_client_drives_all_six_endpoints() {
    let app = spawn_app().await;
    let client = TasksClient::new(
        &format!("http://{}", app.addr),
        Signer::new(&ring(REPORTS_KEY), Audience::default()),
    )
    .unwrap();
    let user = UserId::parse("alice@example.com").unwrap();

    let created = client
        .create(
            &user,
            &CreateTask {
                title: "Report".into(),
                description: Some("Q3".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(created.user_id, "alice@example.com");
    let second = client
        .create(
            &user,
            &CreateTask {
                title: "Archive".into(),
                description: None,
            },
        )
        .await
        .unwrap();

    let done = client
        .complete(&user, created.id, Some(true))
        .await
        .unwrap();
    assert!(done.completed);
    let toggled = client.complete(&user, second.id, None).await.unwrap();
    assert!(toggled.completed);

    let changes = UpdateTask {
        description: Some(None),
        ..Default::default()
    };
    let updated = client.update(&user, created.id, &changes).await.unwrap();
    assert_eq!(updated.description, None);
    assert_eq!(client.get(&user, created.id).await.unwrap(), updated);

    let params = ListParams {
        status: Some(StatusFilter::Completed),
        sort: Some(SortOrder::Title),
        limit: Some(10),
        offset: Some(0),
    };
    let titles: Vec<String> = client
        .list(&user, &params)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.title)
        .collect();
    assert_eq!(titles, ["Archive", "Report"]);

    client.delete(&user, second.id).await.unwrap();
    match client.get(&user, second.id).await {
        Err(ClientError::Api { status, body }) => {
            assert_eq!(status, 404);
            assert_eq!(body, proto_shared::ErrorBody::message("Task not found"));
        }
        other => panic!("expected 404, got {other:?}"),
    }
}
