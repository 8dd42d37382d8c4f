//! Listings and the change journal behind their cursors: pages, the order a client can apply
//! changes in, reset and foreign cursors, a folder recreated within one cursor window, and
//! cursors that stay valid however many the account makes.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::TestDropbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_reports_new_parents_changed_files_and_deletions_in_an_applicable_order() {
    let dropbox = TestDropbox::start().await;
    let (emulator, id) = (dropbox.emulator(), dropbox.id());
    emulator.put_file(id, "/keep.md", "keep").expect("put");
    emulator.put_file(id, "/old/gone.md", "gone").expect("put");
    let cursor = dropbox
        .rpc_json("files/list_folder", json!({"path": "", "recursive": true}))
        .await["cursor"]
        .clone();

    emulator.put_file(id, "/Deep/Er/new.md", "new").expect("put");
    emulator.put_file(id, "/keep.md", "changed once").expect("put");
    emulator.put_file(id, "/keep.md", "changed twice").expect("put");
    emulator.delete_path(id, "/old").expect("delete");
    emulator.move_path(id, "/Deep/Er/new.md", "/Deep/moved.md").expect("move");

    let changes = dropbox.rpc_json("files/list_folder/continue", json!({"cursor": cursor})).await;
    let summary: Vec<(String, String)> = changes["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e[".tag"].as_str().unwrap_or("").to_owned(),
                e["path_display"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    // Ordered by each path's last change: /Deep/Er was last touched when it was created.
    let expected = [
        ("folder", "/Deep"),
        ("folder", "/Deep/Er"),
        ("file", "/keep.md"),
        ("deleted", "/old"),
        ("deleted", "/Deep/Er/new.md"),
        ("file", "/Deep/moved.md"),
    ];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(tag, path)| ((*tag).to_owned(), (*path).to_owned())).collect();
    assert_eq!(summary, expected);
    let entries = changes["entries"].as_array().expect("entries");
    let deleted = entries.iter().find(|e| e[".tag"] == "deleted").expect("a deleted entry");
    assert!(deleted.get("id").is_none() && deleted.get("rev").is_none(), "{deleted}");
    let keep = entries.iter().find(|e| e["path_display"] == "/keep.md").expect("keep.md");
    assert_eq!(keep["size"], "changed twice".len(), "the latest state, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_pages_by_limit_and_the_limit_carries_over_to_continue() {
    let dropbox = TestDropbox::start().await;
    for i in 0..5 {
        dropbox
            .emulator()
            .put_file(dropbox.id(), &format!("/f{i}.md"), format!("{i}"))
            .expect("put");
    }
    let mut page = dropbox.rpc_json("files/list_folder", json!({"path": "", "limit": 2})).await;
    let mut seen = Vec::new();
    let mut pages = 1;
    loop {
        let entries = page["entries"].as_array().expect("entries");
        assert!(entries.len() <= 2);
        seen.extend(entries.iter().map(|e| e["name"].as_str().unwrap_or("").to_owned()));
        if page["has_more"] != true {
            break;
        }
        page =
            dropbox.rpc_json("files/list_folder/continue", json!({"cursor": page["cursor"]})).await;
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["f0.md", "f1.md", "f2.md", "f3.md", "f4.md"]);
    let quiet =
        dropbox.rpc_json("files/list_folder/continue", json!({"cursor": page["cursor"]})).await;
    assert_eq!(quiet["entries"], json!([]));
    assert_eq!(quiet["has_more"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_cursors_turn_every_earlier_cursor_into_a_reset_and_foreign_cursors_are_refused() {
    let dropbox = TestDropbox::start().await;
    let cursor = dropbox.rpc_json("files/list_folder", json!({"path": ""})).await["cursor"].clone();
    let stranger = dropbox.emulator().create_account("Grace Hopper");
    let foreign = dropbox
        .rpc("files/list_folder/continue", &stranger.access_token, json!({"cursor": cursor}))
        .await;
    assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);

    dropbox.emulator().reset_cursors(dropbox.id());
    let response =
        dropbox.rpc("files/list_folder/continue", dropbox.token(), json!({"cursor": cursor})).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({"error_summary": "reset/..", "error": {".tag": "reset"}})
    );
    let fresh = dropbox.rpc_json("files/list_folder", json!({"path": ""})).await["cursor"].clone();
    let response =
        dropbox.rpc("files/list_folder/continue", dropbox.token(), json!({"cursor": fresh})).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// What a client holds after applying entries the way the spec's route notes say: a file
/// replaces the path and its children, a folder keeps its children, a deletion removes the path
/// and its children.
fn apply(held: &mut Vec<(String, bool)>, entries: &Value) {
    for entry in entries.as_array().expect("entries") {
        let path = entry["path_lower"].as_str().expect("a path").to_owned();
        let within = |held: &str| held == path || held.starts_with(&format!("{path}/"));
        match entry[".tag"].as_str() {
            Some("file") => {
                held.retain(|(p, _)| !within(p));
                held.push((path, true));
            }
            Some("folder") => {
                held.retain(|(p, is_file)| !(p == &path && *is_file));
                if !held.iter().any(|(p, _)| *p == path) {
                    held.push((path, false));
                }
            }
            _ => held.retain(|(p, _)| !within(p)),
        }
    }
    held.sort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_deleted_and_recreated_before_continue_reports_each_child_deleted() {
    let dropbox = TestDropbox::start().await;
    let (emulator, id) = (dropbox.emulator(), dropbox.id());
    emulator.put_file(id, "/Notes/a.md", "a").expect("put");
    emulator.put_file(id, "/Notes/b.md", "b").expect("put");
    let listing =
        dropbox.rpc_json("files/list_folder", json!({"path": "", "recursive": true})).await;
    let mut held = Vec::new();
    apply(&mut held, &listing["entries"]);

    emulator.delete_path(id, "/Notes").expect("delete");
    emulator.put_file(id, "/Notes/c.md", "c").expect("put");
    let changes =
        dropbox.rpc_json("files/list_folder/continue", json!({"cursor": listing["cursor"]})).await;
    let deleted: Vec<&str> = changes["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|entry| entry[".tag"] == "deleted")
        .filter_map(|entry| entry["path_lower"].as_str())
        .collect();
    assert_eq!(deleted, ["/notes/a.md", "/notes/b.md"], "{changes}");
    apply(&mut held, &changes["entries"]);
    let expected = [("/notes".to_owned(), false), ("/notes/c.md".to_owned(), true)];
    assert_eq!(held, expected, "the client holds what Dropbox holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_stays_valid_however_many_cursors_the_account_makes_after_it() {
    let dropbox = TestDropbox::start().await;
    let (emulator, id) = (dropbox.emulator(), dropbox.id());
    for name in ["/a.md", "/b.md", "/c.md"] {
        emulator.put_file(id, name, name).expect("put");
    }
    // Paged listings, the kind of cursor that needs the most remembering.
    let mut cursors = Vec::new();
    for _ in 0..200 {
        let page = dropbox.rpc_json("files/list_folder", json!({"path": "", "limit": 1})).await;
        assert_eq!(page["has_more"], true);
        cursors.push(page["cursor"].clone());
    }
    for which in [0, 32, 199] {
        let mut names = Vec::new();
        let mut cursor = cursors[which].clone();
        loop {
            let page =
                dropbox.rpc_json("files/list_folder/continue", json!({"cursor": cursor})).await;
            names.extend(
                page["entries"].as_array().expect("entries").iter().map(|e| e["name"].clone()),
            );
            cursor = page["cursor"].clone();
            if page["has_more"] != true {
                break;
            }
        }
        assert_eq!(names, [json!("b.md"), json!("c.md")], "cursor {which}");
    }
    // And a page handed out long ago still leads to the changes since its listing.
    emulator.put_file(id, "/d.md", "d").expect("put");
    let mut cursor = cursors[0].clone();
    let mut names = Vec::new();
    loop {
        let page = dropbox.rpc_json("files/list_folder/continue", json!({"cursor": cursor})).await;
        names
            .extend(page["entries"].as_array().expect("entries").iter().map(|e| e["name"].clone()));
        cursor = page["cursor"].clone();
        if page["has_more"] != true && page["entries"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
    }
    assert!(names.contains(&json!("d.md")), "{names:?}");
}
