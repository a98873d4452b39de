//! Health, readiness, version, metrics, request ids, graceful shutdown.

use crate::both_backends;
use crate::support::{Backend, TestServer, assert_api_error};

async fn health_ready_version_metrics(backend: Backend) {
    let s = TestServer::start(backend).await;
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    let r: serde_json::Value = s
        .client
        .get(s.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "ok", "{r}");
    assert!(r["checks"].to_string().contains("current"), "{r}");
    let v: serde_json::Value = s
        .client
        .get(s.url("/api/v1/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(v["database"], expected);
    assert_api_error(
        s.client.get(s.url("/nope")).send().await.unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    let metrics = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "cosign_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"unmatched\",method=\"GET\",status=\"404\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("cosign_http_request_duration_seconds_count{route=\"/readyz\"} 1"),
        "{metrics}"
    );
    s.stop().await;
}
both_backends!(health_ready_version_metrics);

async fn readyz_reports_a_dead_database(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.db.close().await;
    let r = s.client.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    // Liveness does not depend on the database.
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A call that needs the database answers 503 JSON, not a 500 or a hang.
    let r = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": "whatever"}))
        .send()
        .await
        .unwrap();
    assert_api_error(r, 503, "UNAVAILABLE").await;
    s.stop().await;
}
both_backends!(readyz_reports_a_dead_database);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start(Backend::Sqlite).await;
    // A request is in flight: headers sent, half the body still to come.
    let body = serde_json::json!({"username": "admin", "password": s.admin_password}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut conn = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let base = s.base.clone();
    let stopping = tokio::spawn(s.stop());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown waits for the in-flight request"
    );
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "no new connections once shutting down"
    );
    conn.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"token\""), "{answer}");
    stopping.await.unwrap();
}
