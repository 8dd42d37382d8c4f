//! Team spaces: a Dropbox Business member's Dropbox starts at the team's root, with their home
//! folder in it beside the team folders. Without `Dropbox-API-Path-Root` a call sees only the
//! home folder; markdrop reads `root_info` when the person connects and roots every files call at
//! the team's namespace, so notes in team folders are converted too.

use markdrop::emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

use crate::support::app::TestApp;
use crate::support::store::Backend;

/// `files/list_folder` of the whole tree as `token`, with `path_root` when given; the status
/// and the listed `path_display`s, or the body when it is not a listing.
async fn list(url: &url::Url, token: &str, path_root: Option<&Value>) -> (u16, Vec<String>, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}2/files/list_folder"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(json!({"path": "", "recursive": true}).to_string());
    if let Some(root) = path_root {
        request = request.header("Dropbox-API-Path-Root", root.to_string());
    }
    let response = request.send().await.expect("list_folder");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let mut paths: Vec<String> = body["entries"]
        .as_array()
        .map(|entries| {
            entries.iter().filter_map(|e| e["path_display"].as_str().map(str::to_owned)).collect()
        })
        .unwrap_or_default();
    paths.sort();
    (status, paths, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_member_sees_only_their_home_folder_unless_a_call_is_rooted_at_the_team() {
    let running = Emulator::new(EmulatorConfig::new("team-key", "team-secret"))
        .start(0)
        .await
        .expect("the emulator");
    let member = running.emulator.create_team_member("Ada");
    let emulator = &running.emulator;
    emulator.put_file(&member.account_id, "/Ada/notes/a.md", "mine").expect("put");
    emulator.put_file(&member.account_id, "/Team Docs/plan.md", "ours").expect("put");

    let account: Value = reqwest::Client::new()
        .post(format!("{}2/users/get_current_account", running.url()))
        .bearer_auth(&member.access_token)
        .send()
        .await
        .expect("get_current_account")
        .json()
        .await
        .expect("JSON");
    let root_info = &account["root_info"];
    assert_eq!(root_info[".tag"], "team", "{account}");
    assert_eq!(root_info["home_path"], "/Ada");
    let root = root_info["root_namespace_id"].as_str().expect("a root").to_owned();
    assert_ne!(Some(root.as_str()), root_info["home_namespace_id"].as_str());

    let (status, home, _) = list(running.url(), &member.access_token, None).await;
    assert_eq!((status, home), (200, vec!["/notes".to_owned(), "/notes/a.md".to_owned()]));
    let rooted = json!({".tag": "root", "root": root});
    let (status, whole, _) = list(running.url(), &member.access_token, Some(&rooted)).await;
    assert_eq!(status, 200);
    assert_eq!(
        whole,
        ["/Ada", "/Ada/notes", "/Ada/notes/a.md", "/Team Docs", "/Team Docs/plan.md"]
    );
    let (status, home_again, _) =
        list(running.url(), &member.access_token, Some(&json!({".tag": "home"}))).await;
    assert_eq!((status, home_again.len()), (200, 2));

    // A root that is not the account's: 422, naming the right one.
    let wrong = json!({".tag": "root", "root": "1"});
    let (status, _, body) = list(running.url(), &member.access_token, Some(&wrong)).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"][".tag"], "invalid_root", "{body}");
    assert_eq!(body["error"]["invalid_root"]["root_namespace_id"], root.as_str());
}

async fn a_team_members_notes_in_team_folders_are_converted_too(backend: Backend) {
    let world = TestApp::with_worker(backend, "team-space").await;
    let account = world.emulator().create_team_member("Ada").account_id;
    world.emulator().put_file(&account, "/Ada/notes/a.md", "# Mine\n").expect("put");
    world.emulator().put_file(&account, "/Team Docs/plan.md", "# Ours\n").expect("put");
    world.connect(&account).await;
    world.html_matching(&account, "/Ada/notes/a.html", "# Mine\n", "a").await;
    world.html_matching(&account, "/Team Docs/plan.html", "# Ours\n", "plan").await;
    world.quiet().await;
    world.emulator().put_file(&account, "/Team Docs/plan.md", "# Ours\n\nversion 2").expect("edit");
    world.html_matching(&account, "/Team Docs/plan.html", "# Ours\n\nversion 2", "plan").await;
    world.quiet().await;
}

crate::on_every_store!(a_team_members_notes_in_team_folders_are_converted_too);
