//! The emulator's folder backing: a directory that is an account's Dropbox, which never reads
//! or writes through a symlink out of it and reports what Dropbox could not hold.

use std::path::Path;

use markdrop::emulator::{Emulator, EmulatorConfig, FolderMirror};

use crate::support::scratch_dir;
use crate::support::wait::eventually_blocking;

fn emulator_with_account() -> (Emulator, String) {
    let emulator = Emulator::new(EmulatorConfig::new("folder-key", "folder-secret"));
    let account = emulator.create_account("Folder Person").account_id;
    (emulator, account)
}

fn write(dir: &Path, relative: &str, content: &str) {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create folders");
    std::fs::write(path, content).expect("write");
}

#[test]
fn files_already_in_the_folder_are_in_the_account_at_once() {
    let dir = scratch_dir("folder-import");
    write(&dir, "Welcome.md", "# Hi\n");
    write(&dir, "Notes/Größe 😀.md", "unicode\n");
    write(&dir, ".DS_Store", "junk");
    write(&dir, "Notes/.draft.md.swp", "junk");
    write(&dir, "Notes/old.md~", "junk");
    let (emulator, account) = emulator_with_account();
    let _mirror = emulator.mirror_folder(&account, &dir).expect("mirror");
    assert_eq!(emulator.file_paths(&account), ["/Notes/Größe 😀.md", "/Welcome.md"]);
    assert_eq!(emulator.read_file(&account, "/welcome.md"), Some(b"# Hi\n".to_vec()));
}

#[test]
fn files_only_in_the_account_are_written_to_the_folder_at_once() {
    let dir = scratch_dir("folder-export");
    let (emulator, account) = emulator_with_account();
    emulator.put_file(&account, "/Deep/Er/file.html", "<p>x</p>").expect("put");
    let _mirror = emulator.mirror_folder(&account, &dir).expect("mirror");
    assert_eq!(std::fs::read_to_string(dir.join("Deep/Er/file.html")).expect("read"), "<p>x</p>");
}

#[test]
fn saving_in_the_folder_changes_the_account() {
    let dir = scratch_dir("folder-save");
    let (emulator, account) = emulator_with_account();
    let _mirror = emulator.mirror_folder(&account, &dir).expect("mirror");
    write(&dir, "Trip/plan.md", "first\n");
    eventually_blocking("the new file to reach the account", || {
        emulator.read_file(&account, "/Trip/plan.md") == Some(b"first\n".to_vec())
    });
    write(&dir, "Trip/plan.md", "second, longer\n");
    eventually_blocking("the edit to reach the account", || {
        emulator.read_file(&account, "/Trip/plan.md") == Some(b"second, longer\n".to_vec())
    });
    std::fs::remove_file(dir.join("Trip/plan.md")).expect("remove");
    eventually_blocking("the deletion to reach the account", || {
        emulator.read_file(&account, "/Trip/plan.md").is_none()
    });
}

#[test]
fn changes_in_the_account_appear_in_the_folder() {
    let dir = scratch_dir("folder-account");
    let (emulator, account) = emulator_with_account();
    let _mirror = emulator.mirror_folder(&account, &dir).expect("mirror");
    emulator.put_file(&account, "/Notes/ReadMe.html", "<h1>hi</h1>").expect("put");
    let on_disk = dir.join("Notes/ReadMe.html");
    eventually_blocking("the upload to reach the folder", || {
        std::fs::read_to_string(&on_disk).is_ok_and(|content| content == "<h1>hi</h1>")
    });
    emulator.delete_path(&account, "/notes/readme.html").expect("delete");
    eventually_blocking("the deletion to reach the folder", || !on_disk.exists());
}

/// Polls until the mirror reports exactly `expected` (as its lines).
fn wait_for_problems(mirror: &FolderMirror, expected: &[String]) {
    eventually_blocking("the mirror to report its problems", || {
        let reported: Vec<String> = mirror.problems().iter().map(ToString::to_string).collect();
        if reported == expected { Ok(()) } else { Err(format!("it reports {reported:?}")) }
    });
}

#[test]
fn a_symlink_is_followed_to_a_file_inside_the_folder_and_never_out_of_it() {
    use std::os::unix::fs::symlink;
    let scratch = scratch_dir("folder-symlinks");
    let (dir, outside) = (scratch.join("Dropbox"), scratch.join("Elsewhere"));
    write(&dir, "Notes/real.md", "inside\n");
    write(&outside, "secret.md", "not in the Dropbox\n");
    write(&outside, "Folder/other.md", "nor this\n");
    symlink(dir.join("Notes/real.md"), dir.join("alias.md")).expect("a link inside");
    symlink(outside.join("secret.md"), dir.join("secret.md")).expect("a link out");
    symlink(&outside, dir.join("Away")).expect("a folder link out");
    symlink(dir.join("Notes"), dir.join("Loop")).expect("a folder link inside");
    let (emulator, account) = emulator_with_account();
    let mirror = emulator.mirror_folder(&account, &dir).expect("mirror");

    assert_eq!(emulator.file_paths(&account), ["/Notes/real.md", "/alias.md"]);
    assert_eq!(emulator.read_file(&account, "/alias.md"), Some(b"inside\n".to_vec()));
    let problems: Vec<String> = mirror.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "/Away is a symlink that points outside the folder; it is not followed",
            "/Loop is a symlink that points to a folder; it is not followed",
            "/secret.md is a symlink that points outside the folder; it is not followed",
        ]
    );

    // Writes from the account never go through them: not into the linked folder, not over the
    // linked file's target. The account keeps them; the folder is left as it was.
    emulator.put_file(&account, "/Away/planted.html", "x").expect("put");
    emulator.put_file(&account, "/Away/Folder/other.md", "overwritten").expect("put");
    emulator.put_file(&account, "/secret.md", "overwritten").expect("put");
    emulator.put_file(&account, "/Notes/fresh.html", "<p>fresh</p>").expect("put");
    eventually_blocking("an ordinary write to reach the folder", || {
        std::fs::read_to_string(dir.join("Notes/fresh.html"))
            .is_ok_and(|text| text == "<p>fresh</p>")
    });
    assert!(!outside.join("planted.html").exists(), "nothing written out of the folder");
    assert_eq!(std::fs::read_to_string(outside.join("Folder/other.md")).unwrap(), "nor this\n");
    assert_eq!(std::fs::read_to_string(outside.join("secret.md")).unwrap(), "not in the Dropbox\n");
    emulator.delete_path(&account, "/Away").expect("delete");
    emulator.delete_path(&account, "/secret.md").expect("delete");
    emulator.delete_path(&account, "/Notes/fresh.html").expect("delete");
    eventually_blocking("an ordinary deletion to reach the folder", || {
        !dir.join("Notes/fresh.html").exists()
    });
    assert!(outside.join("Folder/other.md").exists(), "nothing deleted out of the folder");
    assert!(outside.join("secret.md").exists());
    assert!(dir.join("Away").is_symlink() && dir.join("secret.md").is_symlink());
    mirror.stop();
}

#[test]
fn names_with_a_backslash_or_a_colon_are_reported_and_not_mirrored_either_way() {
    let dir = scratch_dir("folder-names");
    write(&dir, "ok.md", "fine\n");
    write(&dir, "C:notes.md", "drive\n");
    write(&dir, "back\\slash.md", "backslash\n");
    write(&dir, "Bad:Folder/inner.md", "inside a bad name\n");
    let (emulator, account) = emulator_with_account();
    emulator.put_file(&account, "/From:Dropbox.html", "<p>x</p>").expect("put");
    let mirror = emulator.mirror_folder(&account, &dir).expect("mirror");
    assert_eq!(emulator.file_paths(&account), ["/From:Dropbox.html", "/ok.md"]);
    assert!(!dir.join("From:Dropbox.html").exists(), "not written to the folder");
    let problems: Vec<String> = mirror.problems().iter().map(ToString::to_string).collect();
    let unusable = |path: &str| {
        format!(
            "{path} has `\\` or `:` in a name, which Dropbox refuses on Windows; it is not mirrored"
        )
    };
    assert_eq!(
        problems,
        [
            unusable("/Bad:Folder"),
            unusable("/C:notes.md"),
            unusable("/From:Dropbox.html"),
            unusable("/back\\slash.md")
        ]
    );
    mirror.stop();
}

#[test]
fn names_that_differ_only_in_case_are_reported_and_neither_is_mirrored_until_one_goes() {
    let dir = scratch_dir("folder-case");
    write(&dir, "Plan.md", "capital\n");
    write(&dir, "plan.md", "lower\n");
    write(&dir, "Trip/a.md", "a\n");
    write(&dir, "trip/b.md", "b\n");
    write(&dir, "other.md", "other\n");
    let (emulator, account) = emulator_with_account();
    let mirror = emulator.mirror_folder(&account, &dir).expect("mirror");
    assert_eq!(emulator.file_paths(&account), ["/other.md"]);
    let collisions = [
        "/Plan.md and /plan.md differ only in case; Dropbox can hold only one of them, so none \
         is mirrored until all but one are renamed"
            .to_owned(),
        "/Trip and /trip differ only in case; Dropbox can hold only one of them, so none is \
         mirrored until all but one are renamed"
            .to_owned(),
    ];
    assert_eq!(mirror.problems().iter().map(ToString::to_string).collect::<Vec<_>>(), collisions);

    // A change in the account at a held path is not written over either of them.
    emulator.put_file(&account, "/PLAN.md", "from the account\n").expect("put");
    std::fs::remove_file(dir.join("plan.md")).expect("resolve one collision");
    wait_for_problems(&mirror, &collisions[1..]);
    eventually_blocking("the survivor to be mirrored", || {
        emulator.read_file(&account, "/plan.md") == Some(b"capital\n".to_vec())
    });
    assert_eq!(std::fs::read_to_string(dir.join("Plan.md")).unwrap(), "capital\n");
    assert!(emulator.read_file(&account, "/trip/a.md").is_none());
    mirror.stop();
}
