//! `nexa build` runs each component's build command, as `spin build` does,
//! with progress output; a failing command stops with the component named.

use std::process::Command;

use crate::support::AppDir;

fn nexa_build(app: &AppDir) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nexa"))
        .arg("build")
        .arg("-f")
        .arg(app.path("spin.toml"))
        .output()
        .unwrap()
}

/// Runs `command` on a pseudo-terminal (`script`), as a developer's shell
/// does; whether it succeeded, and all it drew.
fn on_a_terminal(command: &str) -> (bool, String) {
    let output = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn build_runs_each_command_in_its_workdir_with_progress() {
    let app = AppDir::new(
        r#"spin_manifest_version = 2
[application]
name = "t"
[component.first]
source = "first.wasm"
[component.first.build]
command = "echo one > built-first.txt"
[component.second]
source = "second.wasm"
[component.second.build]
command = ["mkdir -p sub", "echo two > built-second.txt"]
workdir = "."
[component.unbuilt]
source = "unbuilt.wasm"
"#,
    );
    let output = nexa_build(&app);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(app.path("built-first.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(
        std::fs::read_to_string(app.path("built-second.txt")).unwrap(),
        "two\n"
    );
    assert!(
        stderr.contains("[1/2] Building component first"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[2/2] Building component second"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Finished building 2 component(s)"),
        "{stderr}"
    );
    // Without a terminal: plain lines, the commands' output among them.
    assert!(!stderr.contains("Building ["), "{stderr}");
}

#[test]
fn on_a_terminal_the_build_draws_a_bar_and_keeps_the_commands_output() {
    let app = AppDir::new(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[component.slow]\nsource = \"s.wasm\"\n[component.slow.build]\ncommand = [\"echo compiling-slowly\", \"sleep 1.5\"]\n",
    );
    let command = format!(
        "{} build -f {}",
        env!("CARGO_BIN_EXE_nexa"),
        app.path("spin.toml").display()
    );
    let (succeeded, screen) = on_a_terminal(&command);
    assert!(succeeded, "{screen}");
    // The bar: its title, the step count and the step's message.
    assert!(screen.contains("Building ["), "{screen}");
    assert!(
        screen.contains("0/1 [1/1] Building component slow"),
        "{screen}"
    );
    // The command's own output and each step's result stay on screen.
    assert!(screen.contains("compiling-slowly"), "{screen}");
    assert!(screen.contains("[1/1] Built slow in"), "{screen}");
    assert!(
        screen.contains("Finished building 1 component(s)"),
        "{screen}"
    );
}

#[test]
fn on_a_terminal_start_up_compiles_draw_a_bar() {
    let app = AppDir::new(&format!(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"fallback\"\n[component.fallback]\nsource = \"{}\"\n",
        crate::support::component("fallback").display()
    ));
    // The port is taken: the host compiles (a fresh state dir, so a real
    // compile), then fails to bind and exits, which ends the test.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let command = format!(
        "{} up -f {} --state-dir {} --listen {} --admin-listen off",
        env!("CARGO_BIN_EXE_nexa"),
        app.path("spin.toml").display(),
        app.path("fresh-state").display(),
        taken.local_addr().unwrap()
    );
    let (succeeded, screen) = on_a_terminal(&command);
    assert!(!succeeded, "{screen}");
    assert!(screen.contains("Compiling ["), "{screen}");
    assert!(screen.contains("0/1 component fallback"), "{screen}");
    assert!(screen.contains("binding 127.0.0.1:"), "{screen}");
}

#[test]
fn a_failing_build_names_the_component() {
    let app = AppDir::new(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[component.broken]\nsource = \"b.wasm\"\n[component.broken.build]\ncommand = \"exit 3\"\n",
    );
    let output = nexa_build(&app);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("component \"broken\""), "{stderr}");
    assert!(stderr.contains("exit 3"), "{stderr}");
}

#[tokio::test]
async fn up_with_build_builds_before_serving() {
    let app = AppDir::new(&format!(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"fallback\"\n[component.fallback]\nsource = \"copied.wasm\"\n[component.fallback.build]\ncommand = \"cp {} copied.wasm\"\n",
        crate::support::component("fallback").display()
    ));
    let host = app.start(&["--build"]);
    assert!(
        host.log().contains("Building component fallback"),
        "{}",
        host.log()
    );
    let response = host.client().get(host.url("/x")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
