//! The emulator's folder backing: a directory that is an account's Dropbox.

use std::path::Path;

use markdrop::emulator::{Emulator, EmulatorConfig};

use crate::support::{scratch_dir, wait_until};

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
    wait_until("the new file reaches the account", || {
        emulator.read_file(&account, "/Trip/plan.md") == Some(b"first\n".to_vec())
    });
    write(&dir, "Trip/plan.md", "second, longer\n");
    wait_until("the edit reaches the account", || {
        emulator.read_file(&account, "/Trip/plan.md") == Some(b"second, longer\n".to_vec())
    });
    std::fs::remove_file(dir.join("Trip/plan.md")).expect("remove");
    wait_until("the deletion reaches the account", || {
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
    wait_until("the upload reaches the folder", || {
        std::fs::read_to_string(&on_disk).is_ok_and(|content| content == "<h1>hi</h1>")
    });
    emulator.delete_path(&account, "/notes/readme.html").expect("delete");
    wait_until("the deletion reaches the folder", || !on_disk.exists());
}
