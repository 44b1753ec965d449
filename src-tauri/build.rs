fn main() {
    // Only the tray app needs Tauri's code generation; the headless core builds without it.
    #[cfg(feature = "gui")]
    tauri_build::build();
}
