use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{send, spawn_app};

#[tokio::test]
async fn samples_can_be_created_listed_and_fetched() {
    let app = spawn_app().await;
    let (status, sample) = send(
        app.request(Method::POST, "/physical_samples/")
            .json(&json!({"name": "GaN on sapphire #4"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = sample["id"].as_str().unwrap().to_owned();
    assert_eq!(sample["physical_sample_id"], id.as_str());
    assert_eq!(sample["name"], "GaN on sapphire #4");

    let (status, list) = send(app.get("/physical_samples/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([sample.clone()]));
    let (_, one) = send(app.get(&format!("/physical_samples/?physical_sample_id={id}"))).await;
    assert_eq!(one, json!([sample.clone()]));
    let (status, fetched) = send(app.get(&format!("/physical_samples/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, sample);
}

#[tokio::test]
async fn a_duplicate_name_is_a_409_carrying_the_existing_id() {
    let app = spawn_app().await;
    let (_, sample) = send(
        app.request(Method::POST, "/physical_samples/")
            .json(&json!({"name": "Wafer-7"})),
    )
    .await;
    let (status, problem) = send(
        app.request(Method::POST, "/physical_samples/")
            .json(&json!({"name": "  wafer-7 "})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["detail"]["physical_sample_id"], sample["id"]);
    let (_, list) = send(app.get("/physical_samples/")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn samples_are_private_to_their_owner() {
    let app = spawn_app().await;
    let (_, sample) = send(
        app.request(Method::POST, "/physical_samples/")
            .json(&json!({"name": "mine"})),
    )
    .await;
    let bob = app
        .key_for(
            "bob",
            &[labcat::domain::Scope::Read, labcat::domain::Scope::Write],
        )
        .await;
    let (status, _) = send(app.request_as(
        &bob,
        Method::GET,
        &format!("/physical_samples/{}", sample["id"].as_str().unwrap()),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = send(app.request_as(&bob, Method::GET, "/physical_samples/")).await;
    assert_eq!(list, json!([]));
    // Bob may use the same name: names are unique per owner.
    let (status, _) = send(
        app.request_as(&bob, Method::POST, "/physical_samples/")
            .json(&json!({"name": "mine"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_sample_needs_a_non_blank_name_and_nothing_else() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"name": "  "}),
        json!({"name": 3}),
        json!({"name": "x", "extra": 1}),
    ] {
        let (status, _) = send(app.request(Method::POST, "/physical_samples/").json(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
}
