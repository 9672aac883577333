//! Property tests: arbitrary text and mutations of the starter manifest never make loading
//! panic, and every rejection says where (line and column inside the file) and, when the
//! text parsed as TOML, which key.

use proptest::prelude::*;

use super::*;

/// The starter manifest, as `servio init` writes it.
const STARTER: &str = include_str!("../../../templates/services.toml");

fn check(text: &str) -> Result<(), TestCaseError> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("services.toml");
    let lines = text.lines().count().max(1) + 1;
    let outcome = std::panic::catch_unwind(|| load::from_text(&path, text));
    let Ok(result) = outcome else {
        return Err(TestCaseError::fail(format!("panicked on:\n{text}")));
    };
    let Err(errors) = result else {
        return Ok(());
    };
    prop_assert!(!errors.0.is_empty(), "a rejection without an error");
    for error in &errors.0 {
        prop_assert!(
            error.line >= 1 && error.line <= lines && error.column >= 1,
            "no position inside the file: {error}\n--- for:\n{text}"
        );
        prop_assert!(!error.message.is_empty(), "{error}");
        let syntax = toml::from_str::<toml::Table>(text).is_err();
        prop_assert!(
            syntax || !error.key.is_empty(),
            "a valid TOML document rejected without naming the key: {error}\n--- for:\n{text}"
        );
    }
    Ok(())
}

/// One edit of `text`: cut a span, insert text, repeat a line, or swap a value.
fn mutate(text: &str, edit: (u8, usize, usize, String)) -> String {
    let (kind, a, b, insert) = edit;
    let chars: Vec<char> = text.chars().collect();
    let at = a % (chars.len() + 1);
    let to = (at + b % 40).min(chars.len());
    let (head, tail): (String, String) =
        (chars[..at].iter().collect(), chars[at..].iter().collect());
    match kind % 4 {
        0 => chars[..at].iter().chain(&chars[to..]).collect(),
        1 => format!("{head}{insert}{tail}"),
        2 => {
            let lines: Vec<&str> = text.lines().collect();
            let i = a % lines.len().max(1);
            let mut out: Vec<&str> = lines.clone();
            if let Some(line) = lines.get(i) {
                out.insert(i, line);
            }
            out.join("\n")
        }
        _ => {
            // Replace what follows the next `=` on a line with the inserted token.
            let lines: Vec<String> = text
                .lines()
                .enumerate()
                .map(|(i, line)| match line.split_once('=') {
                    Some((key, _)) if i == a % text.lines().count().max(1) => {
                        format!("{key}= {insert}")
                    }
                    _ => line.to_string(),
                })
                .collect();
            lines.join("\n")
        }
    }
}

/// Tokens that are valid TOML values of the wrong kind, or edge cases of the right kind.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("99999999999".to_string()),
        Just("\"\"".to_string()),
        Just("\"-5s\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("true".to_string()),
        Just("1.5".to_string()),
        Just("\"a\\u0000b\"".to_string()),
        Just("[\"x\", 1]".to_string()),
        "[ -~]{0,12}".prop_map(|s| format!("\"{}\"", s.replace(['"', '\\'], ""))),
        "[ -~\n]{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_and_every_error_has_a_position(text in "(?s).{0,300}") {
        check(&text)?;
    }

    #[test]
    fn mutated_starter_manifests_never_panic_and_errors_name_line_and_key(
        edits in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<usize>(), token()), 1..4)
    ) {
        let mut text = STARTER.to_string();
        for edit in edits {
            text = mutate(&text, edit);
        }
        check(&text)?;
    }
}
