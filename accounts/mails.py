"""Account mail: what we write to people, in their language, and how it leaves.

:func:`queue` writes an :class:`AccountMail` row and its outbox job in the caller's
transaction, so a mail exists if and only if the change that needs it committed, and it is
sent after commit by the worker pool (``accounts.mail.send``), retried while the relay is
down. :func:`deliver` (the job) renders the mail, derives the code again (codes are never
stored), hands it to :mod:`core.mail` and marks the row sent in the job's transaction.

Texts exist in ``LOCALES``; the API picks one from the caller's languages with the
catalog's CLDR fallback (``zh-TW`` -> ``zh-Hant``, ``es-MX`` -> ``es``), else English.
A delivery whose outcome is unknown (the relay accepted, then our commit failed) may
repeat the mail; it keeps its Message-ID so the copies are recognisably one message.
"""

# Chinese texts use full-width punctuation, as Chinese is written.
# ruff: noqa: RUF001

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from accounts import codes, repository
from accounts.models import AccountMail, MailKind, User
from core import mail
from core.db import new_id, utcnow
from core.outbox import enqueue
from core.settings import get_settings

log = logging.getLogger(__name__)

MAIL_JOB = "accounts.mail.send"
DEFAULT_LOCALE = "en"

# (subject, body) per kind and language. Placeholders: {code}, {minutes}, {note}.
TEXTS: dict[str, dict[MailKind, tuple[str, str]]] = {
    "en": {
        MailKind.verify_email: (
            "Your Pocket Cinema code: {code}",
            "Enter this code in the app to confirm your address: {code}\n\n"
            "It works once, for {minutes} minutes. If you did not sign up, ignore this mail: "
            "nobody can use the account without the code.",
        ),
        MailKind.sign_up_attempt: (
            "Someone tried to sign up with your address",
            "Someone tried to create a Pocket Cinema account with this address, which already "
            "has one. If it was you, just sign in; if you forgot your password, reset it in the "
            "app. If it was not you, you need not do anything: your account is unchanged.",
        ),
        MailKind.reset_password: (
            "Your Pocket Cinema password reset code: {code}",
            "Enter this code in the app to choose a new password: {code}\n\n"
            "It works once, for {minutes} minutes. If you did not ask for it, ignore this mail: "
            "your password is unchanged.",
        ),
        MailKind.change_email: (
            "Confirm your new address: {code}",
            "Enter this code in the app to make this your Pocket Cinema address: {code}\n\n"
            "It works once, for {minutes} minutes. If you did not ask for it, ignore this mail.",
        ),
        MailKind.address_in_use: (
            "Someone tried to use your address",
            "Someone tried to move another Pocket Cinema account to this address, which already "
            "has one. Nothing changed. If it was you, sign in to the account of this address.",
        ),
        MailKind.email_changed: (
            "Your Pocket Cinema address was changed",
            "The address of your Pocket Cinema account is now {note}. If you did not do this, "
            "reset your password and contact support at once.",
        ),
        MailKind.account_deleted: (
            "Your Pocket Cinema account was deleted",
            "Your account and what we held about you are deleted. Tickets you bought stay in "
            "our books without your name, as the law on accounting asks. Goodbye, and thank you.",
        ),
    },
    "es": {
        MailKind.verify_email: (
            "Tu código de Pocket Cinema: {code}",
            "Introduce este código en la app para confirmar tu dirección: {code}\n\n"
            "Sirve una sola vez, durante {minutes} minutos. Si no te registraste, ignora este "
            "correo: nadie puede usar la cuenta sin el código.",
        ),
        MailKind.sign_up_attempt: (
            "Alguien intentó registrarse con tu dirección",
            "Alguien intentó crear una cuenta de Pocket Cinema con esta dirección, que ya tiene "
            "una. Si fuiste tú, inicia sesión; si olvidaste la contraseña, restablécela en la "
            "app. Si no fuiste tú, no hace falta hacer nada: tu cuenta no ha cambiado.",
        ),
        MailKind.reset_password: (
            "Tu código para restablecer la contraseña: {code}",
            "Introduce este código en la app para elegir una contraseña nueva: {code}\n\n"
            "Sirve una sola vez, durante {minutes} minutos. Si no lo pediste, ignora este "
            "correo: tu contraseña no ha cambiado.",
        ),
        MailKind.change_email: (
            "Confirma tu nueva dirección: {code}",
            "Introduce este código en la app para usar esta dirección en Pocket Cinema: {code}"
            "\n\nSirve una sola vez, durante {minutes} minutos. Si no lo pediste, ignora este "
            "correo.",
        ),
        MailKind.address_in_use: (
            "Alguien intentó usar tu dirección",
            "Alguien intentó pasar otra cuenta de Pocket Cinema a esta dirección, que ya tiene "
            "una. No ha cambiado nada.",
        ),
        MailKind.email_changed: (
            "Tu dirección de Pocket Cinema ha cambiado",
            "La dirección de tu cuenta de Pocket Cinema es ahora {note}. Si no fuiste tú, "
            "restablece tu contraseña y contacta con soporte enseguida.",
        ),
        MailKind.account_deleted: (
            "Tu cuenta de Pocket Cinema se ha eliminado",
            "Tu cuenta y los datos que teníamos sobre ti se han eliminado. Las entradas "
            "compradas quedan en nuestra contabilidad sin tu nombre. Gracias y hasta pronto.",
        ),
    },
    "it": {
        MailKind.verify_email: (
            "Il tuo codice Pocket Cinema: {code}",
            "Inserisci questo codice nell'app per confermare il tuo indirizzo: {code}\n\n"
            "Vale una sola volta, per {minutes} minuti. Se non ti sei registrato, ignora questa "
            "mail: nessuno può usare l'account senza il codice.",
        ),
        MailKind.sign_up_attempt: (
            "Qualcuno ha provato a registrarsi con il tuo indirizzo",
            "Qualcuno ha provato a creare un account Pocket Cinema con questo indirizzo, che ne "
            "ha già uno. Se eri tu, accedi; se hai dimenticato la password, reimpostala nell'app. "
            "Se non eri tu, non devi fare nulla: il tuo account è invariato.",
        ),
        MailKind.reset_password: (
            "Il codice per reimpostare la password: {code}",
            "Inserisci questo codice nell'app per scegliere una nuova password: {code}\n\n"
            "Vale una sola volta, per {minutes} minuti. Se non l'hai chiesto, ignora questa "
            "mail: la password non è cambiata.",
        ),
        MailKind.change_email: (
            "Conferma il tuo nuovo indirizzo: {code}",
            "Inserisci questo codice nell'app per usare questo indirizzo su Pocket Cinema: "
            "{code}\n\nVale una sola volta, per {minutes} minuti. Se non l'hai chiesto, ignora "
            "questa mail.",
        ),
        MailKind.address_in_use: (
            "Qualcuno ha provato a usare il tuo indirizzo",
            "Qualcuno ha provato a spostare un altro account Pocket Cinema su questo indirizzo, "
            "che ne ha già uno. Non è cambiato nulla.",
        ),
        MailKind.email_changed: (
            "L'indirizzo del tuo account Pocket Cinema è cambiato",
            "L'indirizzo del tuo account Pocket Cinema ora è {note}. Se non sei stato tu, "
            "reimposta la password e contatta subito l'assistenza.",
        ),
        MailKind.account_deleted: (
            "Il tuo account Pocket Cinema è stato eliminato",
            "Il tuo account e i dati che avevamo su di te sono stati eliminati. I biglietti "
            "acquistati restano nella contabilità senza il tuo nome. Grazie e arrivederci.",
        ),
    },
    "ru": {
        MailKind.verify_email: (
            "Ваш код Pocket Cinema: {code}",
            "Введите этот код в приложении, чтобы подтвердить адрес: {code}\n\n"
            "Код действует один раз, {minutes} минут. Если вы не регистрировались, просто "
            "проигнорируйте письмо: без кода учётной записью никто не воспользуется.",
        ),
        MailKind.sign_up_attempt: (
            "Кто-то пытался зарегистрироваться с вашим адресом",
            "Кто-то пытался создать учётную запись Pocket Cinema с этим адресом, хотя она уже "
            "есть. Если это были вы, просто войдите; если забыли пароль, сбросьте его в "
            "приложении. Если это были не вы, ничего делать не нужно: учётная запись не "
            "изменилась.",
        ),
        MailKind.reset_password: (
            "Код для сброса пароля Pocket Cinema: {code}",
            "Введите этот код в приложении, чтобы задать новый пароль: {code}\n\n"
            "Код действует один раз, {minutes} минут. Если вы его не запрашивали, "
            "проигнорируйте письмо: пароль не изменился.",
        ),
        MailKind.change_email: (
            "Подтвердите новый адрес: {code}",
            "Введите этот код в приложении, чтобы сделать этот адрес адресом Pocket Cinema: "
            "{code}\n\nКод действует один раз, {minutes} минут. Если вы его не запрашивали, "
            "проигнорируйте письмо.",
        ),
        MailKind.address_in_use: (
            "Кто-то пытался использовать ваш адрес",
            "Кто-то пытался перенести другую учётную запись Pocket Cinema на этот адрес, хотя "
            "у него уже есть своя. Ничего не изменилось.",
        ),
        MailKind.email_changed: (
            "Адрес вашей учётной записи Pocket Cinema изменён",
            "Теперь адрес вашей учётной записи Pocket Cinema: {note}. Если это были не вы, "
            "сбросьте пароль и сразу свяжитесь с поддержкой.",
        ),
        MailKind.account_deleted: (
            "Ваша учётная запись Pocket Cinema удалена",
            "Ваша учётная запись и данные о вас удалены. Купленные билеты остаются в нашей "
            "отчётности без вашего имени. Спасибо и до свидания.",
        ),
    },
    "zh-Hans": {
        MailKind.verify_email: (
            "您的 Pocket Cinema 验证码：{code}",
            "请在应用中输入此验证码以确认您的邮箱地址：{code}\n\n"
            "验证码仅可使用一次，{minutes} 分钟内有效。如果您没有注册，请忽略此邮件：没有验证码，"
            "任何人都无法使用该账户。",
        ),
        MailKind.sign_up_attempt: (
            "有人尝试用您的邮箱地址注册",
            "有人尝试用此邮箱地址创建 Pocket Cinema 账户，但该地址已有账户。如果是您本人，请直接"
            "登录；如果忘记了密码，请在应用中重置。如果不是您，无需任何操作：您的账户没有变化。",
        ),
        MailKind.reset_password: (
            "您的 Pocket Cinema 密码重置验证码：{code}",
            "请在应用中输入此验证码以设置新密码：{code}\n\n"
            "验证码仅可使用一次，{minutes} 分钟内有效。如果不是您本人申请，请忽略此邮件：您的密码"
            "没有变化。",
        ),
        MailKind.change_email: (
            "确认您的新邮箱地址：{code}",
            "请在应用中输入此验证码，将此地址设为您的 Pocket Cinema 邮箱：{code}\n\n"
            "验证码仅可使用一次，{minutes} 分钟内有效。如果不是您本人申请，请忽略此邮件。",
        ),
        MailKind.address_in_use: (
            "有人尝试使用您的邮箱地址",
            "有人尝试将另一个 Pocket Cinema 账户改用此邮箱地址，但该地址已有账户。没有任何变化。",
        ),
        MailKind.email_changed: (
            "您的 Pocket Cinema 邮箱地址已更改",
            "您的 Pocket Cinema 账户邮箱现在是 {note}。如果不是您本人操作，请立即重置密码并联系"
            "客服。",
        ),
        MailKind.account_deleted: (
            "您的 Pocket Cinema 账户已删除",
            "您的账户及我们保存的您的个人信息已删除。已购买的影票仍按会计要求保留在账目中，但不再"
            "与您关联。感谢您的使用，再见。",
        ),
    },
    "zh-Hant": {
        MailKind.verify_email: (
            "您的 Pocket Cinema 驗證碼：{code}",
            "請在應用程式中輸入此驗證碼以確認您的電子郵件地址：{code}\n\n"
            "驗證碼僅可使用一次，{minutes} 分鐘內有效。如果您沒有註冊，請忽略此郵件：沒有驗證碼，"
            "任何人都無法使用該帳戶。",
        ),
        MailKind.sign_up_attempt: (
            "有人嘗試用您的電子郵件地址註冊",
            "有人嘗試用此電子郵件地址建立 Pocket Cinema 帳戶，但該地址已有帳戶。如果是您本人，請"
            "直接登入；如果忘記了密碼，請在應用程式中重設。如果不是您，無需任何操作：您的帳戶沒有"
            "變更。",
        ),
        MailKind.reset_password: (
            "您的 Pocket Cinema 密碼重設驗證碼：{code}",
            "請在應用程式中輸入此驗證碼以設定新密碼：{code}\n\n"
            "驗證碼僅可使用一次，{minutes} 分鐘內有效。如果不是您本人申請，請忽略此郵件：您的密碼"
            "沒有變更。",
        ),
        MailKind.change_email: (
            "確認您的新電子郵件地址：{code}",
            "請在應用程式中輸入此驗證碼，將此地址設為您的 Pocket Cinema 電子郵件：{code}\n\n"
            "驗證碼僅可使用一次，{minutes} 分鐘內有效。如果不是您本人申請，請忽略此郵件。",
        ),
        MailKind.address_in_use: (
            "有人嘗試使用您的電子郵件地址",
            "有人嘗試將另一個 Pocket Cinema 帳戶改用此電子郵件地址，但該地址已有帳戶。沒有任何"
            "變更。",
        ),
        MailKind.email_changed: (
            "您的 Pocket Cinema 電子郵件地址已變更",
            "您的 Pocket Cinema 帳戶電子郵件現在是 {note}。如果不是您本人操作，請立即重設密碼並"
            "聯絡客服。",
        ),
        MailKind.account_deleted: (
            "您的 Pocket Cinema 帳戶已刪除",
            "您的帳戶及我們保存的您的個人資料已刪除。已購買的電影票仍依會計規定保留在帳目中，但"
            "不再與您關聯。感謝您的使用，再見。",
        ),
    },
}

LOCALES: tuple[str, ...] = tuple(TEXTS)
WITH_CODE = frozenset({MailKind.verify_email, MailKind.reset_password, MailKind.change_email})


def mask(address: str) -> str:
    """``ana.lopez@example.com`` -> ``a***@example.com``: enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def render(kind: MailKind, locale: str, code: str = "", note: str = "") -> tuple[str, str]:
    subject, body = TEXTS.get(locale, TEXTS[DEFAULT_LOCALE])[kind]
    values = {"code": code, "minutes": get_settings().account_code_minutes, "note": note}
    return subject.format(**values), body.format(**values)


def locale_of(user: User | None, fallback: str | None) -> str:
    """The account's own language if it has one, else the request's."""
    for tag in (user.locale if user else None, fallback):
        if tag in TEXTS:
            return tag
    return DEFAULT_LOCALE


def queue(
    session: Session,
    kind: MailKind,
    to: str,
    locale: str,
    *,
    user: User | None = None,
    code_id: str | None = None,
    note: str | None = None,
) -> AccountMail:
    row = AccountMail(
        id=new_id(),
        user_id=user.id if user is not None else None,
        kind=kind,
        to_address=to,
        locale=locale if locale in TEXTS else DEFAULT_LOCALE,
        code_id=code_id,
        note=note,
        created_at=utcnow(),
    )
    session.add(row)
    enqueue(session, MAIL_JOB, mail_id=row.id)
    return row


def deliver(session: Session, mail_id: str) -> None:
    """Send one mail (the job ``accounts.mail.send``). A mail already sent, or whose row is
    gone (its account was deleted before it left), is not sent again."""
    row = repository.get_mail(session, mail_id)
    if row is None or row.sent_at is not None:
        return
    code = ""
    if row.kind in WITH_CODE:
        stored = repository.get_code(session, row.code_id) if row.code_id else None
        if stored is None or stored.used_at is not None or stored.expires_at <= utcnow():
            # Useless by now (spent, expired or deleted): sending it would only confuse.
            log.info("mail not sent: its code is no longer valid", extra={"mail_id": row.id})
            row.sent_at = utcnow()
            row.to_address = ""
            return
        code = codes.code_for(stored.id)
    subject, text = render(row.kind, row.locale, code=code, note=row.note or "")
    mail.send(
        mail.Mail(
            to=row.to_address,
            subject=subject,
            text=text,
            language=row.locale,
            message_id=mail.message_id(row.id),
        )
    )
    row.sent_at = utcnow()
    # Sent: the address is no longer needed here (the account has its own).
    row.to_address = ""
