//! One account's Dropbox: its file tree and its change journal.
//!
//! The tree is the single source of truth for the routes and the test controls alike. Every
//! change goes through [`Namespace::write`], [`Namespace::delete`] or [`Namespace::move_path`],
//! which append to the journal; cursors ([`super::cursor`]) are positions in that journal. This in-memory tree is the
//! only backing today; a folder backing (for `markdrop demo`) can mirror these three operations to
//! disk and feed edits made in the folder back through them, keeping the journal logic here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use serde_json::{Value, json};

use super::clock::format_timestamp;
use super::content_hash::content_hash;
use super::path::{DropboxPath, is_within, name_of};
use super::wire::{Conflict, WriteError};

/// A file or folder in the tree.
#[derive(Clone)]
pub struct Node {
    pub display: String,
    pub id: String,
    pub kind: NodeKind,
}

#[derive(Clone)]
pub enum NodeKind {
    Folder,
    File(FileNode),
}

#[derive(Clone)]
pub struct FileNode {
    pub rev: String,
    pub content: Arc<Vec<u8>>,
    pub content_hash: String,
    pub client_modified: i64,
    pub server_modified: i64,
    /// False for files like Google Docs: listed unless asked not to, never downloadable.
    pub downloadable: bool,
}

/// A `Metadata` value as a route reports it.
#[derive(Clone)]
pub enum Entry {
    File { lower: String, node: Node },
    Folder { lower: String, node: Node },
    Deleted { lower: String, display: String },
}

impl Entry {
    fn of(lower: &str, node: &Node) -> Entry {
        match node.kind {
            NodeKind::Folder => Entry::Folder { lower: lower.to_owned(), node: node.clone() },
            NodeKind::File(_) => Entry::File { lower: lower.to_owned(), node: node.clone() },
        }
    }

    pub fn lower(&self) -> &str {
        match self {
            Entry::File { lower, .. }
            | Entry::Folder { lower, .. }
            | Entry::Deleted { lower, .. } => lower,
        }
    }

    fn hidden_when_non_downloadable_excluded(&self) -> bool {
        matches!(self, Entry::File { node: Node { kind: NodeKind::File(file), .. }, .. } if !file.downloadable)
    }

    /// The metadata JSON; `tagged` adds `.tag` (a `Metadata` result) or leaves it out (a route
    /// whose declared result is `FileMetadata`, like upload and download).
    pub fn to_json(&self, tagged: bool) -> Value {
        let mut value = match self {
            Entry::Deleted { lower, display } => json!({
                ".tag": "deleted",
                "name": name_of(display),
                "path_lower": lower,
                "path_display": display,
            }),
            Entry::Folder { lower, node } => json!({
                ".tag": "folder",
                "name": name_of(&node.display),
                "path_lower": lower,
                "path_display": node.display,
                "id": node.id,
            }),
            Entry::File { lower, node } => {
                let NodeKind::File(file) = &node.kind else {
                    return Value::Null;
                };
                json!({
                    ".tag": "file",
                    "name": name_of(&node.display),
                    "path_lower": lower,
                    "path_display": node.display,
                    "id": node.id,
                    "client_modified": format_timestamp(file.client_modified),
                    "server_modified": format_timestamp(file.server_modified),
                    "rev": file.rev,
                    "size": file.content.len(),
                    "is_downloadable": file.downloadable,
                    "content_hash": file.content_hash,
                })
            }
        };
        if !tagged && let Some(object) = value.as_object_mut() {
            object.remove(".tag");
        }
        value
    }
}

/// What a listing covers; fixed for the life of a cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListScope {
    /// Lowercase path of the listed folder, `""` for the root.
    pub root: String,
    pub recursive: bool,
    pub include_deleted: bool,
    pub include_non_downloadable: bool,
}

impl ListScope {
    fn covers(&self, lower: &str) -> bool {
        let Some(rest) = lower.strip_prefix(&self.root).and_then(|rest| rest.strip_prefix('/'))
        else {
            return false;
        };
        !rest.is_empty() && (self.recursive || !rest.contains('/'))
    }

    fn shows(&self, entry: &Entry) -> bool {
        self.covers(entry.lower())
            && (self.include_non_downloadable || !entry.hidden_when_non_downloadable_excluded())
    }
}

/// How an upload treats a file already at the path (`WriteMode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteMode {
    Add,
    Overwrite,
    Update(String),
}

/// A write as the routes and the controls ask for it.
pub struct WriteRequest {
    pub path: DropboxPath,
    /// Shared, so a caller can keep the bytes of a write that is refused.
    pub content: Arc<Vec<u8>>,
    pub mode: WriteMode,
    pub autorename: bool,
    pub strict_conflict: bool,
    pub client_modified: Option<i64>,
}

/// The result of a write: the file as it now is, and whether anything changed.
pub struct Written {
    pub entry: Entry,
    pub changed: bool,
}

/// One account's files and change journal.
#[derive(Default)]
pub struct Namespace {
    tree: BTreeMap<String, Node>,
    /// Lowercase path of every change, in order; a cursor is an index into it.
    journal: Vec<String>,
    /// The last `path_display` of every path ever present, so a `deleted` entry can name it.
    last_display: HashMap<String, String>,
    /// Bumped by a cursor reset; a cursor from an older epoch gets `reset`.
    pub epoch: u64,
}

/// Generates ids and revs; one per emulator so revs are unique across accounts.
pub trait Minter {
    fn id(&mut self) -> String;
    fn rev(&mut self) -> String;
}

impl Namespace {
    pub fn journal_len(&self) -> usize {
        self.journal.len()
    }

    pub fn get(&self, lower: &str) -> Option<&Node> {
        self.tree.get(lower)
    }

    pub fn entry(&self, lower: &str) -> Option<Entry> {
        self.tree.get(lower).map(|node| Entry::of(lower, node))
    }

    /// The last known state of a path that is gone, for `include_deleted`.
    pub fn deleted_entry(&self, lower: &str) -> Option<Entry> {
        if self.tree.contains_key(lower) {
            return None;
        }
        let display = self.last_display.get(lower)?;
        Some(Entry::Deleted { lower: lower.to_owned(), display: display.clone() })
    }

    pub fn find_id(&self, id: &str) -> Option<String> {
        self.tree.iter().find(|(_, node)| node.id == id).map(|(lower, _)| lower.clone())
    }

    pub fn files(&self) -> impl Iterator<Item = (&String, &Node, &FileNode)> {
        self.tree.iter().filter_map(|(lower, node)| match &node.kind {
            NodeKind::File(file) => Some((lower, node, file)),
            NodeKind::Folder => None,
        })
    }

    pub fn file_mut(&mut self, lower: &str) -> Option<&mut FileNode> {
        match self.tree.get_mut(lower).map(|node| &mut node.kind) {
            Some(NodeKind::File(file)) => Some(file),
            _ => None,
        }
    }

    fn record(&mut self, lower: &str) {
        self.journal.push(lower.to_owned());
        if let Some(node) = self.tree.get(lower) {
            self.last_display.insert(lower.to_owned(), node.display.clone());
        }
    }

    /// Records a change made in place (e.g. a file turned non-downloadable).
    pub fn touch(&mut self, lower: &str) {
        self.record(lower);
    }

    /// The display path of `path` under its existing ancestors' casing.
    fn display_under_existing(&self, path: &DropboxPath) -> String {
        match path.parent() {
            Some(parent) => {
                let parent_display = self
                    .tree
                    .get(&parent.lower)
                    .map_or_else(|| self.display_under_existing(&parent), |n| n.display.clone());
                format!("{parent_display}/{}", path.name())
            }
            None => path.display.clone(),
        }
    }

    fn check_ancestors(&self, path: &DropboxPath) -> Result<(), WriteError> {
        let blocked = path.ancestors().iter().any(|ancestor| {
            matches!(self.tree.get(&ancestor.lower), Some(Node { kind: NodeKind::File(_), .. }))
        });
        if blocked { Err(WriteError::Conflict(Conflict::FileAncestor)) } else { Ok(()) }
    }

    /// Creates the folder at `path` and its missing parents, each journaled as a folder entry.
    pub fn create_folder(&mut self, path: &DropboxPath, minter: &mut dyn Minter) {
        self.create_parents(path, minter);
        if !self.tree.contains_key(&path.lower) {
            let node =
                Node { display: path.display.clone(), id: minter.id(), kind: NodeKind::Folder };
            self.tree.insert(path.lower.clone(), node);
            self.record(&path.lower);
        }
    }

    /// Creates missing parent folders, each journaled as a folder entry.
    fn create_parents(&mut self, path: &DropboxPath, minter: &mut dyn Minter) {
        for ancestor in path.ancestors() {
            if !self.tree.contains_key(&ancestor.lower) {
                let display = self.display_under_existing(&ancestor);
                let node = Node { display, id: minter.id(), kind: NodeKind::Folder };
                self.tree.insert(ancestor.lower.clone(), node);
                self.record(&ancestor.lower);
            }
        }
    }

    /// Writes a file following `WriteMode` (docs/dropbox.md §3.5).
    pub fn write(
        &mut self,
        request: WriteRequest,
        now: i64,
        minter: &mut dyn Minter,
    ) -> Result<Written, WriteError> {
        self.check_ancestors(&request.path)?;
        let hash = content_hash(&request.content);
        let conflict = match self.tree.get(&request.path.lower) {
            None => match &request.mode {
                // Strict update: a rev that matches nothing is a conflict even when nothing is there.
                WriteMode::Update(_) if request.strict_conflict => Some(Conflict::File),
                _ => None,
            },
            Some(Node { kind: NodeKind::Folder, .. }) => Some(Conflict::Folder),
            Some(node @ Node { kind: NodeKind::File(existing), .. }) => {
                let identical = existing.content_hash == hash;
                if identical && !(request.strict_conflict && request.mode != WriteMode::Overwrite) {
                    // Identical content: nothing is written, the rev stays, no journal entry.
                    let entry = Entry::of(&request.path.lower, node);
                    return Ok(Written { entry, changed: false });
                }
                match &request.mode {
                    WriteMode::Overwrite => None,
                    WriteMode::Add => Some(Conflict::File),
                    WriteMode::Update(rev) if *rev == existing.rev && !identical => None,
                    WriteMode::Update(_) => Some(Conflict::File),
                }
            }
        };
        let path = match conflict {
            None => request.path.clone(),
            Some(conflict) if !request.autorename => return Err(WriteError::Conflict(conflict)),
            Some(_) => self.free_name(&request.path, matches!(request.mode, WriteMode::Update(_))),
        };
        self.create_parents(&path, minter);
        let (id, display) = match self.tree.get(&path.lower) {
            Some(existing) => (existing.id.clone(), existing.display.clone()),
            None => (minter.id(), self.display_under_existing(&path)),
        };
        let file = FileNode {
            rev: minter.rev(),
            content: request.content,
            content_hash: hash,
            client_modified: request.client_modified.unwrap_or(now),
            server_modified: now,
            downloadable: true,
        };
        let node = Node { display, id, kind: NodeKind::File(file) };
        let entry = Entry::of(&path.lower, &node);
        self.tree.insert(path.lower.clone(), node);
        self.record(&path.lower);
        Ok(Written { entry, changed: true })
    }

    /// The first free name for an autorename: `name (2).ext` for add and overwrite conflicts,
    /// `name (conflicted copy).ext` for update conflicts.
    fn free_name(&self, path: &DropboxPath, update: bool) -> DropboxPath {
        let name = path.name();
        let (stem, extension) = match name.rfind('.') {
            Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
            _ => (name, ""),
        };
        let prefix = &path.display[..path.display.len() - name.len()];
        (1u32..)
            .map(|attempt| {
                let suffix = match (update, attempt) {
                    (true, 1) => " (conflicted copy)".to_owned(),
                    (true, n) => format!(" (conflicted copy {n})"),
                    (false, n) => format!(" ({})", n + 1),
                };
                let display = format!("{prefix}{stem}{suffix}{extension}");
                DropboxPath { lower: display.to_lowercase(), display }
            })
            .find(|candidate| !self.tree.contains_key(&candidate.lower))
            .unwrap_or_else(|| path.clone())
    }

    /// Deletes a file or a folder with everything in it.
    pub fn delete(&mut self, lower: &str) -> Option<Entry> {
        let entry = self.entry(lower)?;
        self.remove_subtree(lower);
        Some(entry)
    }

    /// Removes a path and everything below it, journaling each removed path, children first.
    ///
    /// A `deleted` entry for the folder alone tells a client to drop its children too
    /// (docs/dropbox.md §3.2), and [`Namespace::changes_page`] reports only that while the folder
    /// stays gone. But if the path is a folder again by the next `continue`, the folder's entry
    /// says "keep its children": only the children's own deletions tell the client they went.
    fn remove_subtree(&mut self, lower: &str) {
        let mut removed: Vec<String> = self
            .tree
            .keys()
            .filter(|path| path.as_str() != lower && is_within(path, lower))
            .cloned()
            .collect();
        self.tree.retain(|path, _| !is_within(path, lower));
        // Deepest first, so no removal is journaled before one below it.
        removed.sort_by_key(|path| std::cmp::Reverse(path.matches('/').count()));
        for path in removed {
            self.record(&path);
        }
        self.record(lower);
    }

    /// Moves a file or folder; the source is journaled as deleted and everything at the
    /// destination as new. A case-only rename changes `path_display` and is not reported,
    /// like Dropbox (docs/dropbox.md §7).
    pub fn move_path(
        &mut self,
        from: &DropboxPath,
        to: &DropboxPath,
        minter: &mut dyn Minter,
    ) -> Result<bool, MoveError> {
        if !self.tree.contains_key(&from.lower) {
            return Err(MoveError::NotFound);
        }
        if from.lower == to.lower {
            // Only the casing changes: the same keys, new display paths for it and everything
            // below it. Not journaled, as Dropbox does not report it.
            let display = self.display_under_existing(to);
            let depth = from.display.split('/').count();
            for (lower, node) in self.tree.iter_mut() {
                if is_within(lower, &from.lower) {
                    node.display = rebase(&node.display, depth, &display);
                    self.last_display.insert(lower.clone(), node.display.clone());
                }
            }
            return Ok(false);
        }
        if is_within(&to.lower, &from.lower) || self.tree.contains_key(&to.lower) {
            return Err(MoveError::Conflict);
        }
        self.check_ancestors(to).map_err(|_| MoveError::Conflict)?;
        let moved: Vec<(String, Node)> = self
            .tree
            .iter()
            .filter(|(path, _)| is_within(path, &from.lower))
            .map(|(path, node)| (path.clone(), node.clone()))
            .collect();
        self.remove_subtree(&from.lower);
        self.create_parents(to, minter);
        let to_display = self.display_under_existing(to);
        let depth = from.display.split('/').count();
        for (_, mut node) in moved {
            node.display = rebase(&node.display, depth, &to_display);
            let lower = node.display.to_lowercase();
            self.tree.insert(lower.clone(), node);
            self.record(&lower);
        }
        Ok(true)
    }

    /// Everything a fresh `list_folder` returns, parents before children.
    #[cfg(test)]
    pub fn list(&self, scope: &ListScope) -> Vec<Entry> {
        self.list_page(scope, None, usize::MAX).0
    }

    /// One page of a fresh listing: up to `limit` entries after `from`, and where the next page
    /// starts if there is one.
    ///
    /// A listing is two sections, each in lowercase path order: the deleted paths (with
    /// `include_deleted`), then the present ones. Path order puts parents before children (a
    /// parent's path is a prefix of its children's), and resuming after a path needs nothing
    /// but that path, so a paged listing holds no state here. Like Dropbox's, a later page shows
    /// the tree as it is then; a change to a part already handed out is in the journal, which the
    /// cursor after the last page reads from the listing's start.
    pub fn list_page(
        &self,
        scope: &ListScope,
        from: Option<&ListingPosition>,
        limit: usize,
    ) -> (Vec<Entry>, Option<ListingPosition>) {
        let mut deleted: Vec<&String> = Vec::new();
        if scope.include_deleted && from.is_none_or(|from| from.in_deleted) {
            deleted = self
                .last_display
                .keys()
                .filter(|lower| !self.tree.contains_key(*lower) && scope.covers(lower))
                .filter(|lower| from.is_none_or(|from| lower.as_str() > from.after.as_str()))
                .collect();
            deleted.sort();
        }
        let deleted = deleted.into_iter().filter_map(|lower| {
            let entry = self.deleted_entry(lower)?;
            Some((ListingPosition { in_deleted: true, after: lower.clone() }, entry))
        });
        let present_from = match from {
            Some(from) if !from.in_deleted => Bound::Excluded(from.after.clone()),
            _ => Bound::Unbounded,
        };
        let present = self
            .tree
            .range((present_from, Bound::Unbounded))
            .map(|(lower, node)| {
                (
                    ListingPosition { in_deleted: false, after: lower.clone() },
                    Entry::of(lower, node),
                )
            })
            .filter(|(_, entry)| scope.shows(entry));
        let mut shown = deleted.chain(present).take(limit.saturating_add(1));
        let mut entries = Vec::new();
        let mut last = None;
        for (position, entry) in shown.by_ref().take(limit) {
            entries.push(entry);
            last = Some(position);
        }
        let more = shown.next().is_some();
        (entries, if more { last } else { None })
    }

    /// The latest state of every path changed since `position`.
    #[cfg(test)]
    pub fn changes_since(&self, position: usize, scope: &ListScope) -> Vec<Entry> {
        self.changes_page(position, self.journal.len(), None, scope, usize::MAX).0
    }

    /// One page of the changes journaled in `position..until`: the latest state of every path
    /// changed there, ordered by each path's last change, up to `limit` of them after the one
    /// last changed at `after`; and the journal index to resume after if more remain.
    ///
    /// That order is safe to apply: a present path's last change always comes after its
    /// parent's (the parent had to exist), and a `deleted` entry for an absent path removes
    /// nothing a later entry needs. A child's deletion is left out while a deletion of one of its
    /// folders is reported: that one already says the child went.
    pub fn changes_page(
        &self,
        position: usize,
        until: usize,
        after: Option<usize>,
        scope: &ListScope,
        limit: usize,
    ) -> (Vec<Entry>, Option<usize>) {
        let until = until.min(self.journal.len());
        let mut last_change: HashMap<&str, usize> = HashMap::new();
        for (index, lower) in self.journal.iter().enumerate().take(until).skip(position) {
            last_change.insert(lower, index);
        }
        let mut changed: Vec<(usize, Entry)> = last_change
            .into_iter()
            .filter_map(|(lower, index)| {
                let entry = self.entry(lower).or_else(|| self.deleted_entry(lower))?;
                Some((index, entry))
            })
            .filter(|(_, entry)| {
                // Deletions are reported whatever `include_deleted` said: a sync must see them.
                scope.shows(entry)
                    || (matches!(entry, Entry::Deleted { .. }) && scope.covers(entry.lower()))
            })
            .collect();
        let gone: HashSet<String> = changed
            .iter()
            .filter(|(_, entry)| matches!(entry, Entry::Deleted { .. }))
            .map(|(_, entry)| entry.lower().to_owned())
            .collect();
        changed.retain(|(_, entry)| {
            !matches!(entry, Entry::Deleted { .. })
                || !proper_ancestors(entry.lower()).any(|ancestor| gone.contains(ancestor))
        });
        changed.sort_by_key(|(index, _)| *index);
        let mut rest = changed
            .into_iter()
            .filter(|(index, _)| after.is_none_or(|after| *index > after))
            .take(limit.saturating_add(1));
        let mut entries = Vec::new();
        let mut last = None;
        for (index, entry) in rest.by_ref().take(limit) {
            entries.push(entry);
            last = Some(index);
        }
        let more = rest.next().is_some();
        (entries, if more { last } else { None })
    }
}

/// Where a paged listing resumes: after the path `after` in its section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingPosition {
    /// In the deleted paths listed first with `include_deleted`, or in the present ones.
    pub in_deleted: bool,
    /// Lowercase path of the last entry handed out.
    pub after: String,
}

/// `/a/b/c` → `/a/b`, `/a`.
fn proper_ancestors(lower: &str) -> impl Iterator<Item = &str> {
    let mut current = lower;
    std::iter::from_fn(move || {
        let cut = current.rfind('/').filter(|cut| *cut > 0)?;
        current = &current[..cut];
        Some(current)
    })
}

/// `display` with its first `depth` components (the moved path's own) replaced by `onto`.
/// Components are counted rather than bytes sliced: lowercasing can change byte lengths.
fn rebase(display: &str, depth: usize, onto: &str) -> String {
    let tail: Vec<&str> = display.split('/').skip(depth).collect();
    if tail.is_empty() { onto.to_owned() } else { format!("{onto}/{}", tail.join("/")) }
}

/// Why a move failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveError {
    NotFound,
    Conflict,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counter(u64);

    impl Minter for Counter {
        fn id(&mut self) -> String {
            self.0 += 1;
            format!("id:{}", self.0)
        }

        fn rev(&mut self) -> String {
            self.0 += 1;
            format!("{:09x}", self.0)
        }
    }

    fn path(text: &str) -> DropboxPath {
        DropboxPath::parse(text).unwrap()
    }

    fn put(files: &mut Namespace, mint: &mut Counter, at: &str, content: &str) -> Written {
        let request = WriteRequest {
            path: path(at),
            content: Arc::new(content.as_bytes().to_vec()),
            mode: WriteMode::Overwrite,
            autorename: false,
            strict_conflict: false,
            client_modified: None,
        };
        files.write(request, 0, mint).unwrap()
    }

    fn everything() -> ListScope {
        ListScope {
            root: String::new(),
            recursive: true,
            include_deleted: false,
            include_non_downloadable: true,
        }
    }

    fn summary(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|entry| match entry {
                Entry::File { node, .. } => format!("file {}", node.display),
                Entry::Folder { node, .. } => format!("folder {}", node.display),
                Entry::Deleted { display, .. } => format!("deleted {display}"),
            })
            .collect()
    }

    #[test]
    fn a_deleted_folder_is_one_deleted_entry_and_its_children_vanish_with_it() {
        let (mut files, mut mint) = (Namespace::default(), Counter::default());
        put(&mut files, &mut mint, "/Old/a.md", "a");
        let position = files.journal_len();
        files.delete("/old").unwrap();
        assert_eq!(summary(&files.changes_since(position, &everything())), ["deleted /Old"]);
        assert!(files.get("/old/a.md").is_none());
    }

    #[test]
    fn a_moved_folder_keeps_its_ids_and_reports_its_new_paths_after_the_old_one() {
        let (mut files, mut mint) = (Namespace::default(), Counter::default());
        let written = put(&mut files, &mut mint, "/A/b/c.md", "c");
        let Entry::File { node, .. } = written.entry else { panic!("a file") };
        let position = files.journal_len();
        files.move_path(&path("/a/b"), &path("/Z/Y"), &mut mint).unwrap();
        assert_eq!(
            summary(&files.changes_since(position, &everything())),
            ["deleted /A/b", "folder /Z", "folder /Z/Y", "file /Z/Y/c.md"]
        );
        assert_eq!(files.get("/z/y/c.md").unwrap().id, node.id);
    }

    #[test]
    fn a_case_only_folder_rename_recases_everything_below_it_without_a_journal_entry() {
        let (mut files, mut mint) = (Namespace::default(), Counter::default());
        put(&mut files, &mut mint, "/Notes/sub/deep/a.md", "a");
        let position = files.journal_len();
        assert_eq!(files.move_path(&path("/notes/sub"), &path("/NOTES/Sub"), &mut mint), Ok(false));
        assert_eq!(files.journal_len(), position);
        let displays: Vec<&str> = files.tree.values().map(|node| node.display.as_str()).collect();
        assert_eq!(displays, ["/Notes", "/Notes/Sub", "/Notes/Sub/deep", "/Notes/Sub/deep/a.md"]);
        files.delete("/notes/sub/deep/a.md").unwrap();
        let deleted = files.changes_since(position, &everything());
        assert_eq!(summary(&deleted), ["deleted /Notes/Sub/deep/a.md"]);
    }

    #[test]
    fn strict_conflict_refuses_even_identical_content_for_add() {
        let (mut files, mut mint) = (Namespace::default(), Counter::default());
        put(&mut files, &mut mint, "/a.md", "same");
        let request = WriteRequest {
            path: path("/a.md"),
            content: Arc::new(b"same".to_vec()),
            mode: WriteMode::Add,
            autorename: false,
            strict_conflict: true,
            client_modified: None,
        };
        assert_eq!(
            files.write(request, 0, &mut mint).err(),
            Some(WriteError::Conflict(Conflict::File))
        );
    }

    #[test]
    fn include_deleted_lists_what_is_gone_before_what_is_there() {
        let (mut files, mut mint) = (Namespace::default(), Counter::default());
        put(&mut files, &mut mint, "/gone.md", "x");
        put(&mut files, &mut mint, "/kept.md", "y");
        files.delete("/gone.md").unwrap();
        let scope = ListScope { include_deleted: true, ..everything() };
        assert_eq!(summary(&files.list(&scope)), ["deleted /gone.md", "file /kept.md"]);
        assert_eq!(summary(&files.list(&everything())), ["file /kept.md"]);
    }

    #[test]
    fn a_folder_deleted_and_recreated_in_one_window_reports_each_child_gone() {
        let (mut files, mut mint) = (Namespace::default(), Counter::default());
        put(&mut files, &mut mint, "/Old/a.md", "a");
        put(&mut files, &mut mint, "/Old/sub/b.md", "b");
        let position = files.journal_len();
        files.delete("/old").unwrap();
        put(&mut files, &mut mint, "/Old/c.md", "c");
        assert_eq!(
            summary(&files.changes_since(position, &everything())),
            // `/Old/sub` stays gone, and its deletion says its children went with it.
            ["deleted /Old/a.md", "deleted /Old/sub", "folder /Old", "file /Old/c.md"]
        );
    }

    #[test]
    fn a_listing_pages_by_path_and_resumes_after_the_last_one_handed_out() {
        let (mut files, mut mint) = (Namespace::default(), Counter::default());
        for name in ["/b.md", "/a/x.md", "/c.md"] {
            put(&mut files, &mut mint, name, "x");
        }
        files.delete("/c.md").unwrap();
        let scope = ListScope { include_deleted: true, ..everything() };
        let (first, next) = files.list_page(&scope, None, 2);
        assert_eq!(summary(&first), ["deleted /c.md", "folder /a"]);
        let next = next.expect("more");
        // A path added behind the resume point is left to the journal; one ahead of it shows.
        put(&mut files, &mut mint, "/0.md", "x");
        put(&mut files, &mut mint, "/d.md", "x");
        let (rest, end) = files.list_page(&scope, Some(&next), 10);
        assert_eq!(summary(&rest), ["file /a/x.md", "file /b.md", "file /d.md"]);
        assert_eq!(end, None);
    }
}
