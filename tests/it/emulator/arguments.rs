//! Arguments checked field by field against the spec, as Dropbox checks them: an unknown field
//! is named in a 400, every documented field is accepted, and revs and paths outside the spec's
//! patterns are refused.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::TestDropbox;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_argument_field_is_a_400_naming_it_on_every_route() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().put_file(dropbox.id(), "/notes/a.md", "a").expect("put");
    let cursor = dropbox.rpc_json("files/list_folder", json!({"path": ""})).await["cursor"].clone();
    let body_cases = [
        ("files/list_folder", json!({"path": "", "recursiv": true}), "recursiv"),
        ("files/list_folder/continue", json!({"cursor": cursor, "limit": 5}), "limit"),
        (
            "files/get_metadata",
            json!({"path": "/notes/a.md", "include_delete": true}),
            "include_delete",
        ),
        (
            "files/delete_v2",
            json!({"path": "/notes/a.md", "parent_revv": "0123456789"}),
            "parent_revv",
        ),
    ];
    for (route, arg, field) in body_cases {
        let (status, body) = dropbox.rpc_text(route, dropbox.token(), arg).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route}: {body}");
        assert_eq!(
            body,
            format!(
                "Error in call to API function \"{route}\": request body: unknown field '{field}'"
            )
        );
    }
    let header_cases = [
        ("files/download", json!({"path": "/notes/a.md", "revision": "0123456789"}), "revision"),
        ("files/upload", json!({"path": "/notes/b.md", "mutee": true}), "mutee"),
        ("files/upload", json!({"path": "/notes/b.md", "mode": {".tag": "add", "x": 1}}), "x"),
    ];
    for (route, arg, field) in header_cases {
        let (status, body) = dropbox.content(route, arg, b"b").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route}: {body}");
        let place = if field == "x" { "mode: " } else { "" };
        assert_eq!(
            body,
            format!(
                "Error in call to API function \"{route}\": HTTP header \"Dropbox-API-Arg\": \
                 {place}unknown field '{field}'"
            )
        );
    }
    assert_eq!(dropbox.emulator().file_paths(dropbox.id()), ["/notes/a.md"], "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_of_the_spec_is_accepted_on_every_route() {
    let dropbox = TestDropbox::start().await;
    let (status, uploaded) = dropbox
        .content(
            "files/upload",
            json!({"path": "/a.md", "mode": {".tag": "overwrite"}, "autorename": false,
                   "client_modified": "2015-05-12T15:50:38Z", "mute": true, "property_groups": [],
                   "strict_conflict": false,
                   "content_hash": markdrop::emulator::content_hash(b"a")}),
            b"a",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{uploaded}");
    let rev = serde_json::from_str::<Value>(&uploaded).expect("JSON")["rev"].clone();
    let listing = dropbox
        .rpc_json(
            "files/list_folder",
            json!({"path": "", "recursive": true, "include_media_info": false,
                   "include_deleted": false, "include_has_explicit_shared_members": false,
                   "include_mounted_folders": true, "limit": 100,
                   "include_non_downloadable_files": true, "include_restorable_info": false}),
        )
        .await;
    assert_eq!(listing["entries"][0]["path_display"], "/a.md");
    let cursor = listing["cursor"].clone();
    dropbox.rpc_json("files/list_folder/continue", json!({"cursor": cursor})).await;
    dropbox
        .rpc_json(
            "files/get_metadata",
            json!({"path": "/a.md", "include_media_info": false, "include_deleted": false,
                   "include_has_explicit_shared_members": false}),
        )
        .await;
    let (status, body) =
        dropbox.content("files/download", json!({"path": "/a.md", "rev": rev}), b"").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    dropbox.rpc_json("files/delete_v2", json!({"path": "/a.md", "parent_rev": rev})).await;
    assert!(dropbox.emulator().file_paths(dropbox.id()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelled_parent_rev_never_makes_a_guarded_delete_unconditional() {
    let dropbox = TestDropbox::start().await;
    let (emulator, id) = (dropbox.emulator(), dropbox.id());
    emulator.put_file(id, "/a.md", "seen").expect("put");
    let seen = dropbox.rev_of("/a.md").await;
    emulator.put_file(id, "/a.md", "edited since").expect("edit");

    let (status, _) = dropbox
        .rpc_text("files/delete_v2", dropbox.token(), json!({"path": "/a.md", "parentrev": seen}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(emulator.read_file(id, "/a.md").as_deref(), Some(&b"edited since"[..]));

    let (status, body) = dropbox
        .rpc_text("files/delete_v2", dropbox.token(), json!({"path": "/a.md", "parent_rev": seen}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(emulator.read_file(id, "/a.md").as_deref(), Some(&b"edited since"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revs_and_paths_outside_the_spec_patterns_are_refused_with_400s() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().put_file(dropbox.id(), "/a.md", "a").expect("put");
    let rev_pattern = "did not match pattern '[0-9a-f]+'";
    let body_cases = [
        (
            "files/delete_v2",
            json!({"path": "/a.md", "parent_rev": "0123456789ABCDEF"}),
            rev_pattern,
        ),
        (
            "files/delete_v2",
            json!({"path": "/a.md", "parent_rev": "abc"}),
            "must be at least 9 characters, got 3",
        ),
        ("files/delete_v2", json!({"path": "rev:0123456789abcdef"}), "did not match pattern"),
        ("files/delete_v2", json!({"path": ""}), "did not match pattern"),
        ("files/list_folder", json!({"path": "rev:0123456789abcdef"}), "did not match pattern"),
        ("files/list_folder", json!({"path": "ns:12x"}), "did not match pattern"),
        ("files/get_metadata", json!({"path": "a.md"}), "did not match pattern"),
    ];
    for (route, arg, fragment) in body_cases {
        let (status, body) = dropbox.rpc_text(route, dropbox.token(), arg.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route} {arg}: {body}");
        let prefix = format!("Error in call to API function \"{route}\": request body: ");
        assert!(body.starts_with(&prefix) && body.contains(fragment), "{route} {arg}: {body}");
    }
    let header_cases = [
        (
            "files/upload",
            json!({"path": "/a.md", "mode": {".tag": "update", "update": "0123456789ABCDEF"}}),
            rev_pattern,
        ),
        ("files/upload", json!({"path": ""}), "path: '' did not match pattern"),
        ("files/download", json!({"path": "a.md"}), "path: 'a.md' did not match pattern"),
        ("files/download", json!({"path": "/a.md", "rev": "xyz"}), rev_pattern),
    ];
    for (route, arg, fragment) in header_cases {
        let (status, body) = dropbox.content(route, arg.clone(), b"x").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route} {arg}: {body}");
        let prefix =
            format!("Error in call to API function \"{route}\": HTTP header \"Dropbox-API-Arg\": ");
        assert!(body.starts_with(&prefix) && body.contains(fragment), "{route} {arg}: {body}");
    }
    assert_eq!(dropbox.emulator().read_file(dropbox.id(), "/a.md").as_deref(), Some(&b"a"[..]));
}
