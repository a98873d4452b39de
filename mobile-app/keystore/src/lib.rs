//! Hardware-backed wrapping of the doctor app's sealed state (issue 9).
//!
//! The state file of the doctor app holds the key share `d1` sealed under the PIN and the
//! server's OPRF key (`sm2_cosign::seal`). On Android and iOS this plugin wraps that sealed blob
//! once more under a key the device's secure hardware keeps and never exports, so a copy of the
//! file taken off the phone (a backup, a rooted file dump) is useless on any other device:
//!
//! * Android: an AES-256-GCM key in the Android Keystore (`AndroidKeyStore`), in StrongBox when
//!   the phone has one, else in the TEE; `wrap` output = `0x01 ‖ IV[12] ‖ ciphertext ‖ tag[16]`.
//! * iOS: a P-256 private key in the Secure Enclave; `wrap` is ECIES
//!   (`eciesEncryptionCofactorVariableIVX963SHA256AESGCM`) to its public key, output
//!   `0x01 ‖ ECIES blob`.
//!
//! The key (alias `yiqian-state-wrap`) is created on the first [`Keystore::wrap`] and deleted by
//! [`Keystore::delete_key`] when the device is unbound. On desktops there is no such key:
//! [`Keystore::hardware_backed`] is `false` and the other calls return [`Error::Unsupported`];
//! the state file stays sealed under the PIN and the server's OPRF key only.
//!
//! The plugin has no JavaScript commands; the Rust shell registers it with [`init`] and calls it
//! through [`KeystoreExt::keystore`]. On mobile every call blocks the calling thread until the
//! Kotlin / Swift side answers; that side works on threads of its own (Android: a worker thread
//! after the UI thread dispatched the call; iOS: Tauri's IPC queue), so the app's setup hook
//! and its commands may call it, but not code running on the Android UI thread itself.

use tauri::{
    Manager, Runtime,
    plugin::{Builder, TauriPlugin},
};

#[cfg(desktop)]
mod desktop;
#[cfg(mobile)]
mod mobile;

#[cfg(desktop)]
pub use desktop::Keystore;
#[cfg(mobile)]
pub use mobile::Keystore;

/// What can go wrong with the hardware key store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// This platform has no hardware key store (desktops).
    #[error("hardware key store not available on this platform")]
    Unsupported,
    /// The key store answered something unusable (for example a reply that is not base64).
    #[error("key store: {0}")]
    Device(String),
    /// The Kotlin / Swift side failed or refused (no key to unwrap with, wrong data, a key store
    /// error); its message is kept.
    #[cfg(mobile)]
    #[error(transparent)]
    PluginInvoke(#[from] tauri::plugin::mobile::PluginInvokeError),
}

/// Access to the [`Keystore`] from the app, an app handle, a window or a webview.
pub trait KeystoreExt<R: Runtime> {
    /// The keystore this plugin manages; the plugin must have been registered with [`init`].
    fn keystore(&self) -> &Keystore<R>;
}

impl<R: Runtime, T: Manager<R>> KeystoreExt<R> for T {
    fn keystore(&self) -> &Keystore<R> {
        self.state::<Keystore<R>>().inner()
    }
}

/// The plugin (name `yiqian-keystore`), for `tauri::Builder::plugin`.
pub fn init<R: Runtime>() -> TauriPlugin<R> {
    Builder::new("yiqian-keystore")
        .setup(|app, api| {
            #[cfg(mobile)]
            let keystore = mobile::init(&api)?;
            #[cfg(desktop)]
            let keystore = {
                let _ = api;
                desktop::Keystore::<R>::new()
            };
            app.manage(keystore);
            Ok(())
        })
        .build()
}
