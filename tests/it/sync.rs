//! The sync worker end to end: the emulator's files become `.html` siblings through real
//! webhooks, the real web app, real Redis and real workers.

use crate::sync_world::SyncWorld;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_converts_the_notes_already_there_in_subfolders_and_with_any_names() {
    let world = SyncWorld::start("sync-first-pass").await;
    let files = [
        ("/ReadMe.md", "# Read me\n\nHello."),
        ("/Notes/Ideas.MD", "* one\n* two\n"),
        ("/Notes/Café/Crème brûlée.md", "# Crème\n"),
        ("/📝 Journal/2026 🎉.md", "Party **time**."),
        ("/Photos/cat.jpg", "not markdown"),
    ];
    let account = world.link_with_files("Ada", &files).await;
    world.html_matching(&account, "/ReadMe.html", files[0].1, "ReadMe").await;
    world.html_matching(&account, "/Notes/Ideas.html", files[1].1, "Ideas").await;
    world
        .html_matching(&account, "/Notes/Café/Crème brûlée.html", files[2].1, "Crème brûlée")
        .await;
    world.html_matching(&account, "/📝 Journal/2026 🎉.html", files[3].1, "2026 🎉").await;
    world.quiet().await;
    let paths = world.emulator().file_paths(&account);
    assert_eq!(paths.iter().filter(|path| path.ends_with(".html")).count(), 4, "{paths:?}");
    assert_eq!(world.uploads(&account), 4, "one upload per note, none for our own uploads");
}
