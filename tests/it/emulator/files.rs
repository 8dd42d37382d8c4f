//! Files over HTTP: uploads, downloads and deletes with any name, refusals before a body is
//! read, identical re-uploads, files that cannot be downloaded, autorename, and writes that
//! overlap another to the same account refused as Dropbox refuses them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestDropbox, content_type};
use crate::support::emulator::SlowUpload;
use crate::support::wait::{DEADLINE, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_list_download_and_delete_with_non_ascii_and_emoji_names() {
    let dropbox = TestDropbox::start().await;
    let uploaded = dropbox.upload_ok("/Notizen/Über 😀.md", b"# Hello\n").await;
    assert!(uploaded.get(".tag").is_none(), "upload returns FileMetadata without .tag");
    assert_eq!(uploaded["name"], "Über 😀.md");
    assert_eq!(uploaded["path_display"], "/Notizen/Über 😀.md");
    assert_eq!(uploaded["path_lower"], "/notizen/über 😀.md");
    assert_eq!(uploaded["size"], 8);
    assert_eq!(
        uploaded["content_hash"],
        "120526db5e8601ebafe01d832259d7d9cd2fb4c0860053c6d33dfed7ebb08da7"
    );
    assert!(uploaded["id"].as_str().is_some_and(|id| id.starts_with("id:") && id.len() > 3));
    let rev = uploaded["rev"].as_str().expect("a rev");
    assert!(
        rev.len() >= 9 && rev.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let modified = uploaded["server_modified"].as_str().expect("a timestamp");
    assert_eq!(modified.len(), 20, "{modified}");
    assert!(modified.ends_with('Z') && modified.as_bytes()[10] == b'T');

    let listing =
        dropbox.rpc_json("files/list_folder", json!({"path": "", "recursive": true})).await;
    let entries = listing["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0][".tag"], "folder");
    assert_eq!(entries[0]["path_display"], "/Notizen");
    assert_eq!(entries[1][".tag"], "file");
    assert_eq!(entries[1]["is_downloadable"], true);
    assert_eq!(listing["has_more"], false);

    let download = dropbox.download("/NOTIZEN/über 😀.md").await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(content_type(&download), "application/octet-stream");
    let result = download.headers().get("Dropbox-API-Result").expect("Dropbox-API-Result").clone();
    let result = result.to_str().expect("an ASCII-only header");
    assert!(result.contains("\\u00dcber \\ud83d\\ude00.md"), "{result}");
    let metadata: Value = serde_json::from_str(result).expect("JSON");
    assert!(metadata.get(".tag").is_none());
    assert_eq!(metadata["path_display"], "/Notizen/Über 😀.md");
    assert_eq!(download.bytes().await.expect("bytes").as_ref(), b"# Hello\n");

    let by_lowercase =
        dropbox.rpc_json("files/get_metadata", json!({"path": "/notizen/über 😀.md"})).await;
    assert_eq!(by_lowercase[".tag"], "file");
    assert_eq!(by_lowercase["rev"], rev);
    let by_id = dropbox.rpc_json("files/get_metadata", json!({"path": uploaded["id"]})).await;
    assert_eq!(by_id["path_display"], "/Notizen/Über 😀.md");

    let deleted = dropbox.rpc_json("files/delete_v2", json!({"path": "/Notizen/Über 😀.md"})).await;
    assert_eq!(deleted["metadata"][".tag"], "file");
    assert_eq!(deleted["metadata"]["rev"], rev);
    assert_eq!(dropbox.emulator().file_paths(dropbox.id()), Vec::<String>::new());
    let gone = dropbox.download("/Notizen/Über 😀.md").await;
    assert_eq!(gone.status(), StatusCode::CONFLICT);
}

/// Sends an upload's head and only the first bytes of the 10 MiB body it announces, and
/// returns the status line of the answer.
async fn status_of_an_unfinished_upload(dropbox: &TestDropbox, headers: String) -> String {
    let address = dropbox.running.url().socket_addrs(|| None).expect("an address")[0];
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("a read timeout");
        let head = format!(
            "POST /2/files/upload HTTP/1.1\r\nHost: {address}\r\n{headers}\
             Content-Length: {}\r\n\r\nthe first bytes",
            10 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        let mut answer = Vec::new();
        let mut buffer = [0; 256];
        while !answer.contains(&b'\n') {
            let read = stream.read(&mut buffer).expect("an answer before the deadline");
            assert!(read > 0, "the connection closed without an answer");
            answer.extend_from_slice(&buffer[..read]);
        }
        String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
    })
    .await
    .expect("the client thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_refused_before_its_body_is_read() {
    let dropbox = TestDropbox::start().await;
    // The rest of the body never comes: an emulator that read it before checking would not
    // answer before the deadline.
    let unknown_token = "Authorization: Bearer sl.nobody-issued-this\r\n\
         Content-Type: application/octet-stream\r\n\
         Dropbox-API-Arg: {\"path\": \"/big.md\"}\r\n";
    let status = status_of_an_unfinished_upload(&dropbox, unknown_token.to_owned()).await;
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    let no_argument = format!(
        "Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n",
        dropbox.token()
    );
    let status = status_of_an_unfinished_upload(&dropbox, no_argument).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_reupload_keeps_its_rev_and_leaves_the_journal_alone() {
    let dropbox = TestDropbox::start().await;
    let first = dropbox.upload_ok("/a.md", b"same").await;
    let cursor = dropbox.rpc_json("files/list_folder", json!({"path": ""})).await["cursor"].clone();
    let again = dropbox.upload_ok("/A.md", b"same").await;
    assert_eq!(again["rev"], first["rev"]);
    assert_eq!(again["server_modified"], first["server_modified"]);
    let changes = dropbox.rpc_json("files/list_folder/continue", json!({"cursor": cursor})).await;
    assert_eq!(changes["entries"], json!([]));
    let changed = dropbox.upload_ok("/a.md", b"different").await;
    assert_ne!(changed["rev"], first["rev"]);
    assert_eq!(changed["id"], first["id"], "an overwrite keeps the file's id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_downloadable_file_is_listed_flagged_hidden_on_request_and_never_downloaded() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().put_file(dropbox.id(), "/Doc.gdoc", "x").expect("put");
    dropbox.emulator().mark_non_downloadable(dropbox.id(), "/doc.gdoc").expect("mark");
    let listed = dropbox.rpc_json("files/list_folder", json!({"path": ""})).await;
    assert_eq!(listed["entries"][0]["is_downloadable"], false);
    let hidden = dropbox
        .rpc_json("files/list_folder", json!({"path": "", "include_non_downloadable_files": false}))
        .await;
    assert_eq!(hidden["entries"], json!([]));
    let download = dropbox.download("/Doc.gdoc").await;
    assert_eq!(download.status(), StatusCode::CONFLICT);
    assert_eq!(
        download.json::<Value>().await.expect("JSON"),
        json!({"error_summary": "unsupported_file/..", "error": {".tag": "unsupported_file"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autorename_picks_a_numbered_name_for_add_and_a_conflicted_copy_for_update() {
    let dropbox = TestDropbox::start().await;
    let original = dropbox.upload_ok("/Report.md", b"one").await;
    let renamed = dropbox
        .upload(
            dropbox.token(),
            json!({"path": "/report.md", "mode": "add", "autorename": true}),
            b"two",
        )
        .await;
    assert_eq!(renamed.json::<Value>().await.expect("JSON")["path_display"], "/report (2).md");
    let stale = "0".repeat(original["rev"].as_str().map_or(9, str::len));
    let update = json!({"path": "/Report.md", "mode": {".tag": "update", "update": stale}, "autorename": true});
    let copy = dropbox.upload(dropbox.token(), update, b"three").await;
    assert_eq!(
        copy.json::<Value>().await.expect("JSON")["path_display"],
        "/Report (conflicted copy).md"
    );
    let update =
        json!({"path": "/Report.md", "mode": {".tag": "update", "update": original["rev"]}});
    let updated = dropbox.upload(dropbox.token(), update, b"four").await;
    assert_eq!(updated.status(), StatusCode::OK);
}

/// A write that changes nothing (deleting a path that is not there): 409 `not_found` while the
/// account is free, 429 while another write holds it.
async fn harmless_write(dropbox: &TestDropbox) -> (StatusCode, String) {
    dropbox.rpc_text("files/delete_v2", dropbox.token(), json!({"path": "/never-there.md"})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_overlapping_another_to_the_same_account_gets_429_too_many_write_operations() {
    let dropbox = TestDropbox::start().await;
    let other = dropbox.emulator().create_account("Grace Hopper");
    let slow =
        SlowUpload::start(dropbox.running.url(), &dropbox.account.access_token, "/slow.md").await;
    // No other write may start before the slow one is in: arriving while another holds the
    // account, the slow one would be refused itself.
    let emulator = dropbox.emulator();
    eventually("the slow upload to reach the emulator", || {
        std::future::ready(emulator.writes_in_flight(dropbox.id()) == 1)
    })
    .await;
    let held = &dropbox;
    eventually("the slow upload to hold the account", || async move {
        harmless_write(held).await.0 == StatusCode::TOO_MANY_REQUESTS
    })
    .await;

    let response = dropbox
        .http
        .post(dropbox.url("2/files/upload"))
        .bearer_auth(&dropbox.account.access_token)
        .header("Dropbox-API-Arg", r#"{"path": "/fast.md"}"#)
        .header("Content-Type", "application/octet-stream")
        .body("fast")
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("Retry-After").is_none(), "Dropbox sends none for this");
    assert_eq!(response.headers()["Content-Type"], "application/json");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"error_summary": "too_many_write_operations/..",
               "error": {"reason": {".tag": "too_many_write_operations"}}})
    );
    // Another account is another namespace.
    let (status, _) = dropbox
        .rpc_text("files/delete_v2", &other.access_token, json!({"path": "/never-there.md"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    assert_eq!(slow.finish().await, "HTTP/1.1 200 OK");
    assert_eq!(
        dropbox.emulator().file_paths(dropbox.id()),
        ["/slow.md"],
        "the refused one wrote nothing"
    );
    assert_eq!(harmless_write(&dropbox).await.0, StatusCode::CONFLICT, "the account is free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_writes_pass_when_a_test_turns_the_refusal_off() {
    let dropbox = TestDropbox::start_with(|config| config.refuse_overlapping_writes = false).await;
    let slow =
        SlowUpload::start(dropbox.running.url(), &dropbox.account.access_token, "/slow.md").await;
    eventually("the slow upload to be in flight", || {
        std::future::ready(dropbox.emulator().writes_in_flight(dropbox.id()) == 1)
    })
    .await;
    assert_eq!(harmless_write(&dropbox).await.0, StatusCode::CONFLICT);
    assert_eq!(slow.finish().await, "HTTP/1.1 200 OK");
}
