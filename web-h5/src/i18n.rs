//! Every text the page shows, in Simplified Chinese (the default) and English.

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Simplified Chinese (default).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The stored form (`zh` / `en`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// Parses the stored form; anything else is Chinese.
    pub fn from_code(code: &str) -> Self {
        if code == "en" { Lang::En } else { Lang::Zh }
    }

    /// The other language (the toggle).
    #[must_use]
    pub fn other(self) -> Self {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// Picks the text for this language.
    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

macro_rules! texts {
    ($($key:ident => $zh:literal, $en:literal;)*) => {
        /// A text key.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum T { $($key,)* }

        impl T {
            /// All keys (for the completeness test).
            pub const ALL: &'static [T] = &[$(T::$key,)*];

            /// The text in the given language.
            pub fn get(self, lang: Lang) -> &'static str {
                match self { $(T::$key => lang.pick($zh, $en),)* }
            }
        }
    };
}

texts! {
    AppTitle => "医签 · 患者签署", "Yiqian · Patient signing";
    LangToggle => "English", "中文";
    FontSmaller => "字小", "Smaller";
    FontLarger => "字大", "Larger";
    Loading => "正在加载…", "Loading…";
    BadLink => "链接无效，请使用医院发送的完整链接。", "This link is not valid; please use the full link the hospital sent.";
    Hospital => "医院", "Hospital";
    Signer => "签署人", "Signer";
    SignerProxy => "代签人（授权人）", "Signer (authorised proxy)";
    ExpiresAt => "有效期至", "Valid until";
    StepVerify => "身份验证", "Verify identity";
    StepRead => "阅读文件", "Read the document";
    StepProxy => "代签信息", "Proxy details";
    StepSign => "签署", "Sign";
    SmsIntro => "我们将向以下手机号发送6位验证码：", "We will send a 6-digit code to:";
    SendCode => "获取验证码", "Send code";
    ResendIn => "秒后可重新获取", "s until you can resend";
    CodeSent => "验证码已发送，请查看短信。", "Code sent; please check your messages.";
    CodeLabel => "短信验证码", "SMS code";
    CodeHint => "请输入6位数字验证码", "Enter the 6-digit code";
    Verify => "验证", "Verify";
    AttemptsLeft => "剩余尝试次数：", "Attempts left: ";
    ReadIntro => "请完整阅读以下文件内容。", "Please read the whole document.";
    ReadToEnd => "请滑动到文件末尾后继续", "Scroll to the end to continue";
    ReadDone => "已阅读至末尾", "You have reached the end";
    ReadProgress => "阅读进度", "Reading progress";
    PageOf => "页", "page";
    PageLoadFailed => "页面图片加载失败，请检查网络后重试。", "A page image failed to load; check the network and retry.";
    Retry => "重试", "Retry";
    Next => "下一步", "Next";
    ProxyIntro => "您正在代替患者签署，请填写代签信息。", "You are signing on the patient's behalf; please fill in these details.";
    Relationship => "与患者关系", "Relationship to the patient";
    RelSpouse => "配偶", "Spouse";
    RelParent => "父母", "Parent";
    RelChild => "子女", "Child";
    RelGuardian => "其他监护人", "Other guardian";
    RelOther => "其他", "Other";
    ChooseOne => "请选择", "Please choose";
    ProxyName => "代签人姓名", "Your name";
    IdNumber => "代签人身份证号", "Your ID number";
    Reason => "代签原因", "Reason for signing on the patient's behalf";
    ReasonHint => "例如：患者昏迷、未成年", "e.g. the patient is unconscious or a minor";
    NeedRelationship => "请选择与患者的关系。", "Please choose the relationship.";
    NeedName => "请填写姓名。", "Please enter your name.";
    NeedReason => "请填写代签原因。", "Please enter the reason.";
    Consent => "我已阅读并理解上述文件内容，同意签署。", "I have read and understood the document and agree to sign.";
    NeedConsent => "请先勾选同意。", "Please tick the consent box first.";
    ConfirmSign => "确认签署", "Confirm and sign";
    HoldToSign => "按住 3 秒签署", "Hold 3 seconds to sign";
    HoldKeep => "请继续按住…", "Keep holding…";
    HoldCancelled => "松开过早，已取消，请重新按住 3 秒。", "Released too early; cancelled. Hold for 3 seconds again.";
    HoldDone => "已确认", "Confirmed";
    DrawHere => "请在框内手写签名", "Sign by hand inside the box";
    Clear => "清除", "Clear";
    Undo => "撤销", "Undo";
    NeedSignature => "请先手写签名。", "Please sign by hand first.";
    CopyIntro => "请逐字抄写下面这句话，每格写一个字：", "Copy this sentence by hand, one character per box:";
    CopyCurrent => "请书写：", "Write:";
    CopyNextChar => "下一个字", "Next character";
    CopyPrevChar => "上一个字", "Previous character";
    CopyMissing => "还有字没有写完。", "Some characters are not written yet.";
    Submit => "提交签署", "Submit";
    Submitting => "正在提交…", "Submitting…";
    NetworkError => "网络异常，签名已保存在本机，请检查网络后点击重试。", "Network problem. Your signature is kept on this phone; check the network and tap Retry.";
    ResumeIntro => "检测到尚未提交成功的签名，请点击重试完成提交。", "A signature has not been submitted yet; tap Retry to finish.";
    DoneTitle => "签署完成", "Signed";
    DoneText => "感谢您的配合，文件已签署完成，可以关闭本页面。", "Thank you. The document is signed; you may close this page.";
    SignedAt => "签署时间", "Signed at";
    StatusSigned => "该文件已签署完成，链接已失效。", "This document is already signed; the link is no longer valid.";
    StatusExpired => "链接已过期，请联系医护人员重新发送。", "The link has expired; ask the staff to send a new one.";
    StatusLocked => "验证失败次数过多，任务已锁定，请联系医护人员。", "Too many failed attempts; the task is locked. Please ask the staff.";
    StatusCancelled => "该签署任务已取消。", "This signing task was cancelled.";
    UnknownMode => "不支持的签署方式，请联系医护人员。", "This signing method is not supported; please ask the staff.";
    PadTitle => "医签 · 床旁签署", "Yiqian · Bedside signing";
    PadDevice => "平板", "Pad";
    PadWard => "病区", "Ward";
    PadEnrolTitle => "登记本平板", "Enrol this pad";
    PadEnrolIntro => "请医护人员输入管理员提供的一次性登记码。本平板将生成自己的设备密钥，私钥不离开本机。", "Staff: enter the one-time enrolment code from the administrator. The pad creates its own device key; the private key never leaves it.";
    PadCodeLabel => "登记码", "Enrolment code";
    PadCodeHint => "6 位以上字母或数字", "6 or more letters or digits";
    PadEnrol => "登记", "Enrol";
    PadEnrolling => "正在生成设备密钥并登记…", "Creating the device key and enrolling…";
    PadBadCode => "请输入完整的登记码。", "Please enter the whole enrolment code.";
    PadNoCrypto => "此浏览器不能生成安全随机数（缺少 crypto.getRandomValues），不能登记为床旁平板。", "This browser cannot make secure random numbers (no crypto.getRandomValues); it cannot be enrolled as a bedside pad.";
    PadKeyFailed => "生成设备密钥失败，不能登记。", "The device key could not be created; enrolment is not possible.";
    PadQueueTitle => "待签署任务", "Tasks to sign";
    PadQueueEmpty => "暂无待签署任务，新任务会自动出现。", "No tasks yet; new tasks appear automatically.";
    PadQueueHint => "请点击任务，把平板交给患者签署。", "Tap a task and hand the pad to the patient.";
    PadBack => "返回任务列表", "Back to the task list";
    PadRevokedTitle => "本平板已停用或未登记", "This pad is disabled or not enrolled";
    PadRevokedText => "服务器不再接受本平板（已被管理员停用，或登记已失效）。请联系管理员获取新的登记码，由医护人员重新登记。", "The server no longer accepts this pad (disabled by the administrator, or its enrolment is gone). Ask the administrator for a new code; staff must enrol it again.";
    PadReenrol => "重新登记", "Enrol again";
    PadHandoff => "扫码用手机签", "Scan to sign on a phone";
    PadHandoffTitle => "请签署人用自己的手机扫码", "Signer: scan this code with your own phone";
    PadHandoffText => "扫码后在手机上核验身份并签署。一人一码：此二维码只属于下面这位签署人。签署完成后本页自动返回任务列表。", "After scanning, prove who you are and sign on the phone. One code per signer: this code belongs only to the signer named below. This page returns to the task list when it is done.";
    PadHandoffGone => "此任务已不在待签列表中（已在手机上签署，或已结束）。", "This task has left the list (signed on the phone, or ended).";
    StepIdentity => "实名核验", "Identity check";
    IdCardTitle => "拍摄身份证人像面", "Photograph your ID card (photo side)";
    IdCardIntro => "请把身份证有照片的一面平放在光线充足处拍摄：四角完整、字迹清晰、没有反光。", "Lay the photo side of your ID card flat in good light: all four corners in the picture, text sharp, no glare.";
    IdCardTake => "拍摄或选择身份证照片", "Take or choose the ID card photo";
    FaceTitle => "本人照片比对", "Face match";
    FaceIntro => "请在光线充足处正对镜头拍摄本人正面照片，不戴帽子、口罩和墨镜。", "In good light, face the camera and take a photo of yourself, without hat, mask or sunglasses.";
    FaceTake => "拍摄本人照片", "Take a photo of yourself";
    LiveTitle => "活体检测", "Liveness check";
    LiveIntro => "请正对镜头，按屏幕上的提示依次做动作，每个动作约 3 秒。", "Face the camera and do each action shown on the screen, about 3 seconds each.";
    LiveStart => "打开摄像头并开始", "Open the camera and start";
    LiveAgain => "重新检测", "Try again";
    LiveStepOf => "动作", "Action";
    LiveSending => "正在上传画面并检测，请稍候…", "Uploading the frames and checking, please wait…";
    ActBlink => "请眨眨眼", "Please blink";
    ActOpenMouth => "请张张嘴", "Please open your mouth";
    ActTurnLeft => "请向左转头", "Please turn your head to the left";
    ActTurnRight => "请向右转头", "Please turn your head to the right";
    Checking => "正在核验，请稍候…", "Checking, please wait…";
    NetworkRetry => "网络异常，请检查网络后重试。", "Network problem; check the network and try again.";
    CheckPassed => "已通过", "Passed";
    CheckFailed => "未通过核验，请按提示重试。", "The check did not pass; please follow the advice and try again.";
    PhotoUnreadable => "无法读取这张照片，请重新拍摄。", "This photo cannot be read; please take it again.";
    CameraUnavailable => "无法打开摄像头。请允许本页面使用摄像头；在微信中打开时，可点右上角“…”选择在浏览器中打开。", "The camera could not be opened. Allow this page to use the camera; in WeChat, tap “…” at the top right and open the page in the browser.";
    ModeButton => "确认签署", "Confirm button";
    ModeLongPress => "长按签署", "Long press";
    ModeHandwriting => "手写签名", "Handwritten signature";
    ModeCopy => "逐字抄录", "Copy by hand";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_exists_in_both_languages() {
        for t in T::ALL {
            assert!(!t.get(Lang::Zh).is_empty(), "{t:?} zh");
            assert!(!t.get(Lang::En).is_empty(), "{t:?} en");
            assert_ne!(t.get(Lang::Zh), t.get(Lang::En), "{t:?} untranslated");
        }
    }

    #[test]
    fn language_codes_round_trip() {
        for l in [Lang::Zh, Lang::En] {
            assert_eq!(Lang::from_code(l.code()), l);
            assert_eq!(l.other().other(), l);
        }
        assert_eq!(Lang::from_code("fr"), Lang::Zh);
    }
}
