use proptest::prelude::*;

use super::*;

fn error(text: &str) -> String {
    SettingsFile::parse("/Notes/markdrop.toml", text).expect_err(text).to_string()
}

fn parsed(text: &str) -> SettingsFile {
    SettingsFile::parse("/Notes/markdrop.toml", text).expect(text)
}

#[test]
fn every_key_is_read_and_an_empty_file_sets_nothing() {
    let file = parsed(
        "exclude = [\"drafts/**\", \"templates/*\"]\ntheme = \"Serif\"\ncss = \"style.css\"\n\
         links = false\nwikilinks = false\nhighlight = false\nmath = false\ntoc = true\n\
         lang = \"pt-BR\"\n",
    );
    let patterns: Vec<&str> = file.exclude.iter().map(Glob::pattern).collect();
    assert_eq!(patterns, ["drafts/**", "templates/*"]);
    assert_eq!(file.theme, Some(Theme::Serif));
    assert_eq!(file.css.as_deref(), Some("/Notes/style.css"));
    assert_eq!(
        [file.links, file.wikilinks, file.highlight, file.math, file.toc],
        [Some(false), Some(false), Some(false), Some(false), Some(true)]
    );
    assert_eq!(file.lang.as_deref(), Some("pt-BR"));
    assert_eq!(file.folder(), "/Notes");
    let empty = parsed("# nothing yet\n");
    assert_eq!((empty.exclude.len(), empty.theme, empty.css, empty.toc), (0, None, None, None));
}

#[test]
fn css_is_resolved_from_the_files_folder_or_from_the_top_with_a_slash() {
    assert_eq!(parsed("css = \"../shared/a.css\"").css.as_deref(), Some("/shared/a.css"));
    assert_eq!(parsed("css = \"./look/a.CSS\"").css.as_deref(), Some("/Notes/look/a.CSS"));
    assert_eq!(parsed("css = \"/site.css\"").css.as_deref(), Some("/site.css"));
    let root = SettingsFile::parse("/markdrop.toml", "css = \"a.css\"").expect("valid");
    assert_eq!((root.folder(), root.css.as_deref()), ("", Some("/a.css")));
}

#[test]
fn a_toml_syntax_error_says_where_it_is() {
    assert_eq!(
        error("theme = \"serif\"\ntoc = \n"),
        "line 2, column 7: not valid TOML: string values must be quoted, expected literal string"
    );
}

#[test]
fn a_duplicate_key_is_named() {
    assert_eq!(
        error("toc = true\ntoc = false\n"),
        "line 2, column 1: not valid TOML: duplicate key toc"
    );
}

#[test]
fn a_file_that_is_not_utf8_is_refused_at_the_first_bad_byte() {
    let error = SettingsFile::parse_bytes("/markdrop.toml", b"toc = true\nlang = \"\xE9\"")
        .expect_err("not UTF-8");
    assert_eq!(error.to_string(), "line 2, column 9: not UTF-8 text; save the file as UTF-8");
    assert!(SettingsFile::parse_bytes("/markdrop.toml", b"toc = true").is_ok());
}

#[test]
fn an_unknown_key_suggests_the_nearest_known_one() {
    assert_eq!(
        error("toc = true\n\ntheme = \"serif\"\n  them = \"plain\""),
        "line 4, column 3: unknown key \"them\"; did you mean \"theme\"?"
    );
    assert_eq!(
        error("Wikilink = false"),
        "line 1, column 1: unknown key \"Wikilink\"; did you mean \"wikilinks\"?"
    );
}

#[test]
fn an_unknown_key_far_from_any_lists_the_keys() {
    assert_eq!(
        error("[site]\ntitle = \"x\""),
        "line 1, column 2: unknown key \"site\"; the keys are exclude, theme, css, links, \
         wikilinks, highlight, math, toc, lang"
    );
}

#[test]
fn the_first_mistake_in_the_text_is_reported_not_the_first_in_key_order() {
    assert_eq!(error("zzz = 1\naaa = 2\n"), error("zzz = 1\n"));
}

#[test]
fn a_wrong_type_names_what_was_expected_and_what_was_found() {
    assert_eq!(
        error("toc = \"yes\""),
        "line 1, column 7: \"toc\" must be true or false, not a string"
    );
    assert_eq!(error("math = 1"), "line 1, column 8: \"math\" must be true or false, not a number");
    assert_eq!(
        error("theme = [\"serif\"]"),
        "line 1, column 9: \"theme\" must be a string, like \"serif\", not a list"
    );
    assert_eq!(
        error("css = true"),
        "line 1, column 7: \"css\" must be a string, like \"style.css\", not true or false"
    );
    assert_eq!(
        error("lang = 5"),
        "line 1, column 8: \"lang\" must be a string, like \"en\", not a number"
    );
    assert_eq!(
        error("exclude = \"drafts\""),
        "line 1, column 11: \"exclude\" must be a list of patterns, like [\"drafts/**\"], not a string"
    );
    assert_eq!(
        error("exclude = [\"a\", 2]"),
        "line 1, column 17: each pattern in \"exclude\" must be a string, like \"drafts/**\", not a number"
    );
    assert_eq!(
        error("toc = 2026-01-01"),
        "line 1, column 7: \"toc\" must be true or false, not a date"
    );
    assert_eq!(
        error("toc = { a = 1 }"),
        "line 1, column 7: \"toc\" must be true or false, not a table"
    );
}

#[test]
fn a_bad_pattern_is_reported_at_the_pattern() {
    assert_eq!(
        error("exclude = [\n  \"ok/**\",\n  \"bad**\",\n]"),
        "line 3, column 3: the pattern \"bad**\" in \"exclude\": ** must be a whole folder name, \
         like \"drafts/**\" or \"**/old\""
    );
    assert_eq!(
        error("exclude = [\"\"]"),
        "line 1, column 12: the pattern \"\" in \"exclude\": an empty pattern would match nothing"
    );
}

#[test]
fn an_unknown_theme_lists_the_themes() {
    assert_eq!(
        error("theme = \"dark\""),
        "line 1, column 9: unknown theme \"dark\"; the themes are \"default\", \"serif\" and \"plain\""
    );
}

#[test]
fn a_stylesheet_must_be_a_css_file_inside_the_dropbox() {
    assert_eq!(
        error("css = \"https://example.com/a.css\""),
        "line 1, column 7: \"css\" = \"https://example.com/a.css\" is a web address; name a \
         stylesheet in your Dropbox, like \"style.css\""
    );
    assert_eq!(
        error("css = \"//cdn.example.com/a.css\""),
        "line 1, column 7: \"css\" = \"//cdn.example.com/a.css\" is a web address; name a \
         stylesheet in your Dropbox, like \"style.css\""
    );
    assert_eq!(
        error("css = \"../../a.css\""),
        "line 1, column 7: \"css\" = \"../../a.css\" leads above the top folder of your Dropbox"
    );
    assert_eq!(
        error("css = \"notes.md\""),
        "line 1, column 7: \"css\" = \"notes.md\" is not a .css file"
    );
    assert_eq!(
        error("css = \" \""),
        "line 1, column 7: \"css\" cannot be empty; name a stylesheet, like \"style.css\""
    );
    assert_eq!(
        error("css = 'a\\b.css'"),
        "line 1, column 7: \"css\" uses / between folders, not \\"
    );
}

#[test]
fn a_bad_language_tag_is_refused() {
    assert_eq!(
        error("lang = \"en us\""),
        "line 1, column 8: \"lang\" = \"en us\" is not a language tag, like \"en\" or \"pt-BR\""
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_eq!(
        error("# é😀\nlang = \"é\" # ü\n"),
        "line 2, column 8: \"lang\" = \"é\" is not a language tag, like \"en\" or \"pt-BR\""
    );
    assert_eq!(error("lang = \"x\" ; ü\n").split(':').next(), Some("line 1, column 12"));
}

proptest! {
    #[test]
    fn any_text_is_read_or_refused_at_a_place_inside_it(text in "[a-z=\\[\\]\"' .,/*?\\n#é{}0-9-]{0,80}") {
        if let Err(error) = SettingsFile::parse("/a/markdrop.toml", &text) {
            let lines: Vec<&str> = text.split('\n').collect();
            prop_assert!(error.line >= 1 && error.line <= lines.len(), "{error} in {text:?}");
            let columns = lines[error.line - 1].chars().count() + 1;
            prop_assert!(error.column >= 1 && error.column <= columns, "{error} in {text:?}");
        }
    }

    #[test]
    fn any_value_of_a_known_key_is_read_or_refused_at_a_place_inside_it(
        key in prop::sample::select(KEYS.to_vec()),
        value in "[a-z\"\\[\\]*?/,. !0-9-]{0,24}",
    ) {
        let text = format!("{key} = {value}");
        if let Err(error) = SettingsFile::parse("/markdrop.toml", &text) {
            prop_assert!(error.line == 1, "{error} in {text:?}");
            prop_assert!(error.column <= text.chars().count() + 1, "{error} in {text:?}");
        }
    }
}
