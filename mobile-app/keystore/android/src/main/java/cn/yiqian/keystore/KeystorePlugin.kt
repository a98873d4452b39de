// The doctor app's hardware-backed wrapping key on Android (tauri-plugin-yiqian-keystore).
//
// An AES-256-GCM key in the Android Keystore, non-exportable, in StrongBox when the phone has
// one (API 28+), else in the TEE. Rust calls `wrap`, `unwrap` and `deleteKey` (src/mobile.rs);
// bytes travel as standard base64 in {"data": "..."}.
//
// wrap output: version 0x01 || IV (12 bytes, chosen by the key store) || ciphertext || tag (16
// bytes); the version byte is also the GCM associated data.

package cn.yiqian.keystore

import android.annotation.TargetApi
import android.app.Activity
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.util.Base64
import app.tauri.annotation.Command
import app.tauri.annotation.InvokeArg
import app.tauri.annotation.TauriPlugin
import app.tauri.plugin.Invoke
import app.tauri.plugin.JSObject
import app.tauri.plugin.Plugin
import java.security.KeyStore
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

@InvokeArg
class DataArgs {
    lateinit var data: String
}

@TauriPlugin
class KeystorePlugin(activity: Activity) : Plugin(activity) {
    companion object {
        const val ALIAS = "yiqian-state-wrap"
        private const val ANDROID_KEY_STORE = "AndroidKeyStore"
        private const val TRANSFORMATION = "AES/GCM/NoPadding"
        private const val VERSION: Byte = 1
        private const val IV_LENGTH = 12
        private const val TAG_BITS = 128
    }

    // Key store work (StrongBox is slow) runs off the UI thread, one call at a time, so two
    // first calls cannot both create the key.
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()

    @Command
    fun wrap(invoke: Invoke) = transform(invoke, "wrap", ::encrypt)

    @Command
    fun unwrap(invoke: Invoke) = transform(invoke, "unwrap", ::decrypt)

    // wrap and unwrap: base64 in, `f` on the worker thread, base64 out (or the reason it failed).
    private fun transform(invoke: Invoke, name: String, f: (ByteArray) -> ByteArray) {
        val args = invoke.parseArgs(DataArgs::class.java)
        worker.execute {
            try {
                val out = f(Base64.decode(args.data, Base64.NO_WRAP))
                val ret = JSObject()
                ret.put("data", Base64.encodeToString(out, Base64.NO_WRAP))
                invoke.resolve(ret)
            } catch (e: Exception) {
                invoke.reject("$name failed: ${describe(e)}")
            }
        }
    }

    @Command
    fun deleteKey(invoke: Invoke) {
        worker.execute {
            try {
                val keyStore = loadKeyStore()
                if (keyStore.containsAlias(ALIAS)) {
                    keyStore.deleteEntry(ALIAS)
                }
                invoke.resolve()
            } catch (e: Exception) {
                invoke.reject("deleteKey failed: ${describe(e)}")
            }
        }
    }

    private fun describe(e: Exception): String =
        "${e.javaClass.simpleName}: ${e.message ?: "no message"}"

    private fun loadKeyStore(): KeyStore =
        KeyStore.getInstance(ANDROID_KEY_STORE).apply { load(null) }

    private fun existingKey(): SecretKey? = loadKeyStore().getKey(ALIAS, null) as? SecretKey

    private fun keyForWrapping(): SecretKey {
        existingKey()?.let { return it }
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
            generateStrongBoxKey()?.let { return it }
        }
        return generateKey(strongBox = false)
    }

    // null when the phone has no StrongBox (the key then lives in the TEE).
    @TargetApi(Build.VERSION_CODES.P)
    private fun generateStrongBoxKey(): SecretKey? =
        try {
            generateKey(strongBox = true)
        } catch (e: StrongBoxUnavailableException) {
            null
        }

    private fun generateKey(strongBox: Boolean): SecretKey {
        val spec = KeyGenParameterSpec.Builder(
            ALIAS,
            KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT
        )
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
            .setRandomizedEncryptionRequired(true)
        if (strongBox && Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
            spec.setIsStrongBoxBacked(true)
        }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, ANDROID_KEY_STORE)
        generator.init(spec.build())
        return generator.generateKey()
    }

    private fun encrypt(plain: ByteArray): ByteArray {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        // Randomized encryption: the key store picks the IV.
        cipher.init(Cipher.ENCRYPT_MODE, keyForWrapping())
        val iv = cipher.iv
        check(iv.size == IV_LENGTH) { "unexpected IV length ${iv.size}" }
        cipher.updateAAD(byteArrayOf(VERSION))
        val body = cipher.doFinal(plain)
        val out = ByteArray(1 + IV_LENGTH + body.size)
        out[0] = VERSION
        System.arraycopy(iv, 0, out, 1, IV_LENGTH)
        System.arraycopy(body, 0, out, 1 + IV_LENGTH, body.size)
        return out
    }

    private fun decrypt(wrapped: ByteArray): ByteArray {
        require(wrapped.size >= 1 + IV_LENGTH + TAG_BITS / 8) { "wrapped data too short" }
        require(wrapped[0] == VERSION) { "unknown wrapped-data version ${wrapped[0]}" }
        val key = existingKey()
            ?: throw IllegalStateException("no wrapping key on this device (unbound, or the data comes from another device)")
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(TAG_BITS, wrapped, 1, IV_LENGTH))
        cipher.updateAAD(byteArrayOf(VERSION))
        return cipher.doFinal(wrapped, 1 + IV_LENGTH, wrapped.size - 1 - IV_LENGTH)
    }
}
