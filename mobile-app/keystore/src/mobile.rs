//! Android and iOS: the Kotlin plugin `cn.yiqian.keystore.KeystorePlugin` (android/) and the
//! Swift plugin `KeystorePlugin` (ios/), reached with `run_mobile_plugin`. Bytes cross the
//! bridge as standard base64 (with padding) in JSON strings: `{"data": "…"}` both ways.

use std::fmt;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tauri::{
    Runtime,
    plugin::{PluginApi, PluginHandle},
};

use crate::Error;

#[cfg(target_os = "ios")]
tauri::ios_plugin_binding!(init_plugin_yiqian_keystore);

/// Loads the native plugin class (Android) or calls its `@_cdecl` constructor (iOS).
pub(crate) fn init<R: Runtime, C: DeserializeOwned>(
    api: &PluginApi<R, C>,
) -> Result<Keystore<R>, Error> {
    // Keep these names in step with android/ and ios/ (scripts/mobile-config-check.py checks).
    #[cfg(target_os = "android")]
    let handle = api.register_android_plugin("cn.yiqian.keystore", "KeystorePlugin")?;
    #[cfg(target_os = "ios")]
    let handle = api.register_ios_plugin(init_plugin_yiqian_keystore)?;
    Ok(Keystore(handle))
}

/// Arguments of `wrap` and `unwrap`: the bytes, base64.
#[derive(Debug, Serialize)]
struct DataArgs<'a> {
    data: &'a str,
}

/// Answer of `wrap` and `unwrap`: the bytes, base64.
#[derive(Debug, Deserialize)]
struct DataResponse {
    data: String,
}

/// The device's hardware key store: a handle to the native plugin.
pub struct Keystore<R: Runtime>(PluginHandle<R>);

impl<R: Runtime> fmt::Debug for Keystore<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystore")
            .field("hardware_backed", &true)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Keystore<R> {
    /// `true`: a non-exportable key in the Android Keystore (StrongBox or TEE) or the Secure
    /// Enclave wraps the state (on the iOS simulator, which has no Secure Enclave, a keychain
    /// key; for development only).
    #[allow(clippy::unused_self)] // `false` on desktops, where the same method exists
    pub fn hardware_backed(&self) -> bool {
        true
    }

    /// Encrypts `plain` under the device's non-exportable key (alias `yiqian-state-wrap`),
    /// creating the key on first use. Blocks until the native side answers.
    pub fn wrap(&self, plain: &[u8]) -> Result<Vec<u8>, Error> {
        self.call("wrap", plain)
    }

    /// Reverses [`Self::wrap`]; fails if the key is gone (device unbound, app reinstalled, data
    /// restored onto another device) or the data was altered. Blocks until the native side
    /// answers.
    pub fn unwrap(&self, wrapped: &[u8]) -> Result<Vec<u8>, Error> {
        self.call("unwrap", wrapped)
    }

    /// Deletes the key (device unbind); succeeds when there is none. Whatever it wrapped can no
    /// longer be unwrapped.
    pub fn delete_key(&self) -> Result<(), Error> {
        // Both sides answer `null`; accept whatever comes.
        let _: serde::de::IgnoredAny = self.0.run_mobile_plugin("deleteKey", ())?;
        Ok(())
    }

    fn call(&self, command: &str, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let data = STANDARD.encode(bytes);
        let response: DataResponse = self
            .0
            .run_mobile_plugin(command, DataArgs { data: &data })?;
        STANDARD.decode(response.data).map_err(|e| {
            Error::Device(format!(
                "{command}: the native side answered invalid base64: {e}"
            ))
        })
    }
}
