"""A deterministic generator of realistic mail, and a fast loader into a private Dovecot.

``generate(n, seed)`` yields ``n`` raw messages (bytes, CRLF line ends, as IMAP delivers
them): a CRM support/sales mailbox in English, German, French, Russian, Chinese and
Japanese; RFC 2047 encoded names and subjects; text/plain, multipart/alternative and some
HTML-only newsletters; quoted-printable, base64 and 8bit bodies; threads (In-Reply-To and
References point at earlier generated Message-IDs, replies quote their parent); a few
messages without a Message-ID; about 2% carry a 0.5-5 MB attachment (a PDF or a zip of
incompressible bytes, base64). With the default seed, 10,000 messages total about 650 MB
and the median message is about 8 KB.

``ensure_mailbox(n, seed)`` writes them once as a Maildir under ``bench/out/mailboxes/``
(cached by n, seed and generator version); ``load_into(dovecot, user, n, seed)`` links
those files into the user's INBOX of a private Dovecot (``espomail.testing.dovecot``),
owned by the uid Dovecot uses, and checks the count with STATUS. One APPEND per message
would take minutes for 10,000 messages; linking takes well under a second.

Run ``.venv/bin/python -m bench.mailgen --messages 10000`` to build the cache and print
the mailbox's statistics.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from email.charset import Charset
from email.header import Header
from email.utils import format_datetime, formataddr
from pathlib import Path

# Bump when the generator's output changes: it is part of the cache key.
GENERATOR_VERSION = 1

OUT = Path(__file__).resolve().parent / "out"
MAILBOXES = OUT / "mailboxes"

BIG_ATTACHMENT_EVERY = 50  # 2% of the messages
BIG_ATTACHMENT_MIN = 500_000
BIG_ATTACHMENT_MAX = 5_000_000
NO_MESSAGE_ID_SHARE = 0.005
REPLY_SHARE = 0.45

# -- text material -----------------------------------------------------------------------

SENTENCES = {
    "en": [
        "Thank you for your quick reply.",
        "We are still experiencing the issue with the invoice export.",
        "Could you please check whether the change has been applied to our account?",
        "The order was placed on Monday but we have not received a confirmation yet.",
        "Attached you will find the signed contract and the delivery schedule.",
        "Our finance department needs the corrected invoice by the end of the month.",
        "I tried to log in again this morning and the error message is the same.",
        "Please let me know if you need any further information from our side.",
        "The shipment arrived damaged; two of the twelve boxes were open.",
        "We would like to extend the licence to another 25 users from next quarter.",
        "Can we schedule a short call on Thursday to go through the open points?",
        "The customer reference number is missing on the last three statements.",
        "Unfortunately the workaround you suggested did not solve the problem.",
        "I have forwarded your message to our IT team, who will get back to you.",
        "For the record, the ticket was opened more than two weeks ago.",
    ],
    "de": [
        "Vielen Dank für Ihre schnelle Rückmeldung.",
        "Leider funktioniert der Export der Rechnungen immer noch nicht.",
        "Könnten Sie bitte prüfen, ob die Änderung übernommen wurde?",
        "Die Bestellung wurde am Montag aufgegeben, eine Bestätigung fehlt bisher.",
        "Im Anhang finden Sie den unterschriebenen Vertrag und den Lieferplan.",
        "Unsere Buchhaltung benötigt die korrigierte Rechnung bis Monatsende.",
        "Ich habe mich heute früh erneut angemeldet, die Fehlermeldung ist dieselbe.",
        "Bitte geben Sie Bescheid, falls Sie weitere Informationen benötigen.",
        "Die Lieferung kam beschädigt an; zwei der zwölf Kartons waren geöffnet.",
        "Wir möchten die Lizenz ab dem nächsten Quartal um 25 Benutzer erweitern.",
        "Können wir am Donnerstag kurz telefonieren, um die offenen Punkte zu klären?",
        "Auf den letzten drei Abrechnungen fehlt unsere Kundennummer.",
        "Der vorgeschlagene Workaround hat das Problem leider nicht gelöst.",
        "Ich habe Ihre Nachricht an unsere IT-Abteilung weitergeleitet.",
        "Zur Info: Das Ticket wurde vor mehr als zwei Wochen eröffnet. Grüße aus Köln.",
    ],
    "fr": [
        "Merci beaucoup pour votre réponse rapide.",
        "Nous rencontrons toujours un problème avec l'export des factures.",
        "Pourriez-vous vérifier si la modification a bien été prise en compte ?",
        "La commande a été passée lundi, mais nous n'avons reçu aucune confirmation.",
        "Vous trouverez ci-joint le contrat signé et le calendrier de livraison.",
        "Notre service comptable a besoin de la facture corrigée avant la fin du mois.",
        "J'ai réessayé de me connecter ce matin, le message d'erreur est le même.",
        "N'hésitez pas à me contacter si vous avez besoin d'informations complémentaires.",
        "La livraison est arrivée endommagée : deux des douze cartons étaient ouverts.",
        "Nous souhaitons étendre la licence à 25 utilisateurs supplémentaires.",
        "Pouvons-nous prévoir un court appel jeudi pour passer en revue les points ouverts ?",
        "Le numéro de client manque sur les trois derniers relevés.",
        "Malheureusement, la solution de contournement proposée n'a pas résolu le problème.",
        "J'ai transmis votre message à notre équipe informatique, qui reviendra vers vous.",
        "Pour mémoire, le dossier a été ouvert il y a plus de deux semaines. Bien à vous.",
    ],
    "ru": [
        "Спасибо за быстрый ответ.",
        "К сожалению, проблема с выгрузкой счетов всё ещё не решена.",
        "Не могли бы вы проверить, применено ли изменение к нашей учётной записи?",
        "Заказ был оформлен в понедельник, но подтверждения мы пока не получили.",
        "Во вложении подписанный договор и график поставок.",
        "Нашей бухгалтерии нужен исправленный счёт до конца месяца.",
        "Сегодня утром я снова попытался войти, ошибка та же самая.",
        "Сообщите, пожалуйста, если вам нужна дополнительная информация.",
        "Груз пришёл повреждённым: две из двенадцати коробок были вскрыты.",
        "Мы хотели бы расширить лицензию ещё на 25 пользователей со следующего квартала.",
        "Можем ли мы созвониться в четверг, чтобы обсудить открытые вопросы?",
        "В последних трёх выписках отсутствует номер клиента.",
        "Предложенный обходной путь, к сожалению, не помог.",
        "Я переслал ваше письмо нашему ИТ-отделу, они с вами свяжутся.",
        "Напоминаю, что заявка была открыта более двух недель назад.",
    ],
    "zh": [
        "感谢您的快速回复。",
        "很抱歉，发票导出的问题仍然存在。",
        "请您确认一下修改是否已经在我们的账户中生效？",
        "订单是周一下的，但我们至今还没有收到确认。",
        "附件是已签署的合同和交货计划。",
        "我们的财务部门需要在月底之前收到更正后的发票。",
        "我今天早上再次尝试登录，错误信息还是一样。",
        "如果需要我们提供更多信息，请随时告诉我。",
        "货物到达时已损坏，十二个箱子中有两个被打开了。",
        "我们希望从下个季度起将许可证再增加二十五个用户。",
        "我们能否在周四安排一个简短的电话会议，讨论未解决的问题？",
        "最近三份对账单上缺少客户编号。",
        "遗憾的是，您建议的临时解决方案并没有解决问题。",
        "我已将您的邮件转发给我们的技术团队，他们会尽快与您联系。",
        "顺便说一下，这个工单是两个多星期前提交的。",
    ],
    "ja": [
        "ご返信ありがとうございます。",
        "請求書のエクスポートの問題がまだ解決していません。",
        "変更が弊社のアカウントに反映されているかご確認いただけますでしょうか。",
        "月曜日に注文しましたが、まだ確認のメールが届いておりません。",
        "署名済みの契約書と納品スケジュールを添付いたします。",
        "経理部では月末までに訂正済みの請求書が必要です。",
        "今朝もう一度ログインを試みましたが、同じエラーメッセージが表示されました。",
        "追加の情報が必要でしたら、お気軽にお知らせください。",
        "荷物が破損した状態で届きました。十二箱のうち二箱が開いていました。",
        "来四半期からライセンスをさらに二十五ユーザー分追加したいと考えております。",
        "未解決の点について、木曜日に短いお電話をお願いできますでしょうか。",
        "直近三回分の明細書にお客様番号が記載されていません。",
        "ご提案いただいた回避策では問題は解決しませんでした。",
        "ご連絡いただいた内容は弊社のIT部門に転送いたしました。",
        "なお、このチケットは二週間以上前に起票されたものです。",
    ],
}

GREETINGS = {
    "en": ("Hello {name},", "Best regards,"),
    "de": ("Sehr geehrte Damen und Herren,", "Mit freundlichen Grüßen"),
    "fr": ("Bonjour {name},", "Cordialement,"),
    "ru": ("Здравствуйте, {name}!", "С уважением,"),
    "zh": ("{name}，您好：", "此致\n敬礼"),
    "ja": ("{name}様", "よろしくお願いいたします。"),
}

SUBJECTS = {
    "en": [
        "Invoice {n} is wrong",
        "Order {n}: missing items",
        "Cannot log in",
        "Licence renewal {n}",
        "Question about contract {n}",
        "Damaged delivery",
        "Meeting next week",
    ],
    "de": [
        "Rechnung {n} fehlerhaft",
        "Bestellung {n}: Lieferung unvollständig",
        "Anmeldung schlägt fehl",
        "Verlängerung der Lizenz {n}",
        "Frage zum Vertrag {n}",
        "Beschädigte Lieferung",
        "Rückruf erbeten",
    ],
    "fr": [
        "Facture {n} erronée",
        "Commande {n} : articles manquants",
        "Impossible de se connecter",
        "Renouvellement de la licence {n}",
        "Question sur le contrat {n}",
        "Livraison endommagée",
    ],
    "ru": [
        "Ошибка в счёте {n}",
        "Заказ {n}: не хватает позиций",
        "Не удаётся войти",
        "Продление лицензии {n}",
        "Вопрос по договору {n}",
        "Повреждённая поставка",
    ],
    "zh": ["发票 {n} 有误", "订单 {n}：缺少商品", "无法登录", "许可证续订 {n}", "关于合同 {n} 的问题", "货物损坏"],
    "ja": [
        "請求書 {n} の誤り",
        "注文 {n}：商品不足",
        "ログインできません",
        "ライセンス更新 {n}",
        "契約 {n} についての質問",
        "破損した荷物",
    ],
}

PEOPLE = {
    "en": ["John Smith", "Emily Clarke", "Michael O'Brien", "Sarah Johnson", "David Lee"],
    "de": ["Jürgen Müller", "Käthe Schröder", "Stefan Weiß", "Björn Hölzer", "Anna Groß"],
    "fr": ["François Dubois", "Hélène Lefèvre", "Jérôme Garçon", "Amélie Rousseau", "Zoé Mercier"],
    "ru": ["Анна Смирнова", "Дмитрий Иванов", "Ольга Кузнецова", "Сергей Попов", "Елена Волкова"],
    "zh": ["王伟", "李娜", "张敏", "刘洋", "陈静"],
    "ja": ["佐藤 花子", "鈴木 一郎", "高橋 美咲", "田中 健", "渡辺 由美"],
}

DOMAINS = {
    "en": ["acme-industries.com", "northwind.co.uk", "globex.net"],
    "de": ["mueller-technik.de", "schmidt-logistik.de", "alpenbau.at"],
    "fr": ["dubois-sa.fr", "lumiere-conseil.fr", "atelier-leman.ch"],
    "ru": ["sibtrade.ru", "volga-log.ru", "nevamash.ru"],
    "zh": ["huaxin-tech.cn", "dragonparts.com.cn", "jinghua.cn"],
    "ja": ["sakura-denki.co.jp", "fujiseiki.jp", "kaizen-trade.co.jp"],
}

LANGUAGES = ["en", "de", "fr", "ru", "zh", "ja"]
LANGUAGE_WEIGHTS = [40, 20, 15, 10, 8, 7]

DISCLAIMER = (
    "CONFIDENTIALITY NOTICE: This e-mail and any attachments are confidential and may be "
    "privileged. If you are not the intended recipient, please notify the sender immediately "
    "and delete this message; any use, disclosure or copying is prohibited. Diese E-Mail "
    "enthält vertrauliche Informationen. Wenn Sie nicht der richtige Adressat sind, "
    "informieren Sie bitte sofort den Absender und vernichten Sie diese Mail."
)

OUR_ADDRESS = "support@example.com"
OUR_NAME = "Example Support"


# -- the generator -----------------------------------------------------------------------


@dataclasses.dataclass
class _Sent:
    message_id: str | None
    references: list[str]
    subject: str
    lang: str
    sender: tuple[str, str]
    text: str
    date: dt.datetime


def generate(n: int, seed: int = 1) -> Iterator[bytes]:
    """Yield ``n`` raw messages (CRLF line ends); the same (n, seed) gives the same bytes."""
    for _date, raw in _generate(n, seed):
        yield raw


def _generate(n: int, seed: int) -> Iterator[tuple[dt.datetime, bytes]]:
    rng = random.Random(seed)
    history: list[_Sent] = []
    date = dt.datetime(2023, 1, 2, 8, 0, tzinfo=dt.UTC)
    big_at = -1
    for index in range(n):
        if index % BIG_ATTACHMENT_EVERY == 0:  # exactly one big attachment per block
            big_at = index + rng.randrange(BIG_ATTACHMENT_EVERY)
        date += dt.timedelta(seconds=rng.expovariate(1 / 3000))
        parent = None
        if history and rng.random() < REPLY_SHARE:
            window = history[-200:] if rng.random() < 0.9 else history
            parent = rng.choice(window)
        if parent is not None:
            lang = parent.lang
            subject = (
                parent.subject
                if parent.subject.startswith(("Re:", "AW:", "RE:"))
                else (rng.choice(["Re: ", "RE: ", "AW: " if lang == "de" else "Re: "]) + parent.subject)
            )
            sender = _person(rng, lang) if rng.random() < 0.5 else (OUR_NAME, OUR_ADDRESS)
            if sender[1] == parent.sender[1]:
                sender = (OUR_NAME, OUR_ADDRESS) if sender[1] != OUR_ADDRESS else _person(rng, lang)
            recipient = parent.sender
        else:
            lang = rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0]
            subject = rng.choice(SUBJECTS[lang]).format(n=rng.randint(10000, 99999))
            sender = _person(rng, lang)
            recipient = (OUR_NAME, OUR_ADDRESS)
        message_id = None
        if rng.random() >= NO_MESSAGE_ID_SHARE:
            message_id = _message_id(rng, index, sender[1])
        references: list[str] = []
        if parent is not None and parent.message_id:
            references = [*parent.references[-9:], parent.message_id]
        text = _body_text(rng, lang, recipient[0], sender[0], parent)
        raw = _render(rng, index, date, sender, recipient, subject, lang, message_id, references, text, index == big_at)
        history.append(_Sent(message_id, references, subject, lang, sender, text[:3000], date))
        if len(history) > 3000:
            del history[:1000]
        yield date, raw


def _person(rng: random.Random, lang: str) -> tuple[str, str]:
    name = rng.choice(PEOPLE[lang])
    local = rng.choice(["info", "buchhaltung" if lang == "de" else "accounts", "orders", "it", "office"])
    if rng.random() < 0.6:
        local = f"user{rng.randint(1, 400)}"
    return name, f"{local}@{rng.choice(DOMAINS[lang])}"


def _message_id(rng: random.Random, index: int, address: str) -> str:
    domain = address.partition("@")[2]
    style = rng.random()
    if style < 0.3:
        token = base64.b64encode(rng.randbytes(30), altchars=b"+_").decode().rstrip("=")
        return f"<CA{token}@mail.gmail.com>"
    if style < 0.55:
        token = rng.randbytes(20).hex().upper()
        return f"<AM0PR{token}@AM0PR06MB.eurprd06.prod.outlook.com>"
    return f"<{rng.getrandbits(64):016x}.{index}@{domain}>"


def _paragraph(rng: random.Random, lang: str) -> str:
    joiner = "" if lang in ("zh", "ja") else " "
    return joiner.join(rng.choice(SENTENCES[lang]) for _ in range(rng.randint(2, 6)))


def _wrap(text: str, width: int = 72) -> list[str]:
    lines: list[str] = []
    for para in text.split("\n"):
        if " " not in para:  # CJK: cut by characters
            lines.extend(para[i : i + width // 2] for i in range(0, max(len(para), 1), width // 2))
            continue
        line = ""
        for word in para.split(" "):
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return lines


def _body_text(rng: random.Random, lang: str, to_name: str, from_name: str, parent: _Sent | None) -> str:
    hello, bye = GREETINGS[lang]
    # Log-normal paragraph count: most mail is short, a few are long.
    count = max(1, min(40, int(rng.lognormvariate(1.55, 0.7))))
    parts = [hello.format(name=to_name.split(" ")[0])]
    parts += ["\n".join(_wrap(_paragraph(rng, lang))) for _ in range(count)]
    parts.append(f"{bye}\n{from_name}")
    if rng.random() < 0.5:
        parts.append(
            f"-- \n{from_name}\nPhone +49 221 {rng.randint(1000000, 9999999)}\n"
            f"https://www.example.net/{rng.getrandbits(32):08x}"
        )
    if rng.random() < 0.25:
        parts.append("\n".join(_wrap(DISCLAIMER)))
    text = "\n\n".join(parts)
    if parent is not None:
        when = format_datetime(parent.date)
        quoted = "\n".join(f"> {line}" if line else ">" for line in parent.text.split("\n"))
        text += f"\n\nOn {when}, {parent.sender[0]} <{parent.sender[1]}> wrote:\n{quoted}"
    return text + "\n"


def _html(text: str, rng: random.Random) -> str:
    paras = []
    for block in text.split("\n\n"):
        escaped = block.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if block.startswith(">"):
            paras.append(
                '<blockquote style="margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex">'
                + escaped.replace("\n", "<br>\n")
                + "</blockquote>"
            )
        else:
            paras.append(
                '<p class="MsoNormal" style="margin:0;font-family:Calibri,Arial,sans-serif;'
                'font-size:11pt;color:#1f1f1f">' + escaped.replace("\n", "<br>\n") + "</p>"
            )
    style = (
        '<style>\n<!--\n@font-face {font-family:"Cambria Math"; panose-1:2 4 5 3 5 4 6 3 2 4;}\n'
        "p.MsoNormal, li.MsoNormal, div.MsoNormal {margin:0cm; font-size:11.0pt; "
        'font-family:"Calibri",sans-serif;}\na:link, span.MsoHyperlink {mso-style-priority:99; '
        "color:#0563C1; text-decoration:underline;}\n.MsoChpDefault {mso-style-type:export-only;}\n"
        "@page WordSection1 {size:612.0pt 792.0pt; margin:70.85pt 70.85pt 2.0cm 70.85pt;}\n"
        "div.WordSection1 {page:WordSection1;}\n-->\n</style>"
    )
    return (
        '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office">\n'
        '<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
        f'<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n{style}\n</head>\n'
        f'<body lang="DE" link="#0563C1" vlink="#954F72">\n<div class="WordSection1">\n'
        + "\n".join(paras)
        + f'\n<p class="MsoNormal"><img width="120" height="40" id="Logo{rng.randint(1, 9)}" '
        'src="https://www.example.net/logo.png" alt="Logo"></p>\n</div>\n</body>\n</html>\n'
    )


def _newsletter(rng: random.Random, lang: str) -> str:
    rows = []
    for _ in range(rng.randint(6, 18)):
        rows.append(
            '<tr><td style="padding:12px 24px;font-family:Helvetica,Arial,sans-serif;font-size:15px;'
            'line-height:22px;color:#333333">'
            f'<h2 style="margin:0 0 8px 0;font-size:18px">{rng.choice(SUBJECTS[lang]).format(n=rng.randint(1, 99))}'
            f"</h2><p>{_paragraph(rng, lang)}</p>"
            f'<a href="https://news.example.org/c/{rng.getrandbits(96):024x}?utm_source=newsletter&amp;'
            'utm_medium=email&amp;utm_campaign=monthly" style="color:#ffffff;background:#0066cc;'
            'padding:8px 16px;border-radius:4px;text-decoration:none">Read more</a></td></tr>'
        )
    return (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n<html><head>'
        '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><title>Newsletter</title>'
        '</head><body style="margin:0;padding:0;background:#f4f4f4">\n'
        '<table role="presentation" width="100%" cellspacing="0" cellpadding="0" border="0">'
        '<tr><td align="center"><table role="presentation" width="600" cellspacing="0" '
        'cellpadding="0" border="0" style="background:#ffffff">\n' + "\n".join(rows) + "\n</table></td></tr></table>"
        f'<img src="https://news.example.org/o/{rng.getrandbits(128):032x}.gif" width="1" height="1" alt="">'
        "</body></html>\n"
    )


def _encode_part(rng: random.Random, content_type: str, text: str, lang: str) -> str:
    """Headers and body of one text part, in a transfer encoding typical of its language."""
    data = text.encode("utf-8")
    roll = rng.random()
    latin = lang in ("en", "de", "fr")
    if lang == "en" and data.isascii() and roll < 0.5:
        cte, body = "7bit", text
    elif (latin and roll < 0.75) or (not latin and roll < 0.15):
        cte, body = "quoted-printable", binascii.b2a_qp(data, istext=True).decode("ascii")
    elif roll < 0.9:
        cte, body = "base64", _base64_lines(data)
    else:
        cte, body = "8bit", text
    return f'Content-Type: {content_type}; charset="utf-8"\nContent-Transfer-Encoding: {cte}\n\n{body}'


def _base64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + "\n"


def _attachment(rng: random.Random, lang: str) -> tuple[str, str, bytes]:
    size = int(BIG_ATTACHMENT_MIN * (BIG_ATTACHMENT_MAX / BIG_ATTACHMENT_MIN) ** rng.random())
    kind = rng.random()
    noise = rng.randbytes(size)
    if kind < 0.6:
        name = rng.choice(["Rechnung", "Facture", "Invoice", "Договор", "合同", "見積書"]) + f"_{size % 9973}.pdf"
        head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        head += b"4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % size
        return name, "application/pdf", head + noise + b"\nendstream\nendobj\n%%EOF\n"
    if kind < 0.9:
        name = f"export_{size % 9973}.zip"
        return name, "application/zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + noise
    return f"scan_{size % 9973}.bin", "application/octet-stream", noise


def _header(name: str, value: str, charset: str = "utf-8") -> str:
    if value.isascii():
        return f"{name}: {value}"
    encoded = Header(value, Charset(charset), header_name=name).encode(linesep="\n")
    return f"{name}: {encoded}"


def _address(name: str, address: str, rng: random.Random) -> str:
    if name.isascii():
        return formataddr((name, address))
    charset = "iso-8859-1" if rng.random() < 0.3 and _latin1(name) else "utf-8"
    return formataddr((name, address), charset=charset)


def _latin1(text: str) -> bool:
    try:
        text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return False
    return True


def _trace_headers(rng: random.Random, date: dt.datetime, sender: str) -> list[str]:
    domain = sender.partition("@")[2]
    stamp = format_datetime(date)
    ip = f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    queue = rng.getrandbits(48)
    lines = [
        "Return-Path: <" + sender + ">",
        "Delivered-To: " + OUR_ADDRESS,
        f"Received: from mx1.example.com\n\tby mail.example.com with LMTP\n\tid {queue:012X}\n"
        f"\t(envelope-from <{sender}>)\n\tfor <{OUR_ADDRESS}>; {stamp}",
        f"Received: from mail.{domain} (mail.{domain} [{ip}])\n\t(using TLSv1.3 with cipher "
        "TLS_AES_256_GCM_SHA384 (256/256 bits)\n\t key-exchange X25519 server-signature RSA-PSS (2048 bits))"
        f"\n\t(No client certificate requested)\n\tby mx1.example.com (Postfix) with ESMTPS id {queue:010X}"
        f"\n\tfor <{OUR_ADDRESS}>; {stamp}",
    ]
    provider = rng.random()
    signature = _folded(base64.b64encode(rng.randbytes(256)).decode())
    body_hash = base64.b64encode(rng.randbytes(32)).decode()
    if provider < 0.35:  # Microsoft 365: many X-MS headers
        lines.append(f"ARC-Seal: i=1; a=rsa-sha256; s=arcselector9901; d=microsoft.com; cv=none;\n b={signature}")
        lines.append(
            "ARC-Authentication-Results: i=1; mx.microsoft.com 1; spf=pass smtp.mailfrom="
            f"{domain}; dmarc=pass action=none header.from={domain}; dkim=pass header.d={domain}; arc=none"
        )
        for name in (
            "X-MS-Exchange-CrossTenant-Network-Message-Id",
            "X-MS-Exchange-CrossTenant-Id",
            "X-MS-Exchange-CrossTenant-AuthSource",
            "X-MS-PublicTrafficType",
            "X-MS-TrafficTypeDiagnostic",
            "X-MS-Office365-Filtering-Correlation-Id",
            "X-MS-Exchange-SenderADCheck",
            "X-MS-Exchange-AntiSpam-Relay",
            "X-Microsoft-Antispam",
            "X-Forefront-Antispam-Report",
        ):
            lines.append(f"{name}: {rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}")
        lines.append("X-Microsoft-Antispam-Message-Info:\n " + _folded(base64.b64encode(rng.randbytes(900)).decode()))
    elif provider < 0.7:  # Gmail
        lines.append(
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=20230601;"
            " t=1700000000; x=1700604800;\n h=to:subject:message-id:date:from:mime-version:from:to:cc"
            f":subject\n :date:message-id:reply-to;\n bh={body_hash};\n b={signature}"
        )
        lines.append(f"X-Google-DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\n b={signature}")
        lines.append("X-Gm-Message-State: " + _folded(base64.b64encode(rng.randbytes(60)).decode()))
        lines.append("X-Google-Smtp-Source: " + base64.b64encode(rng.randbytes(64)).decode())
    else:
        lines.append(f"DKIM-Signature: v=1; a=rsa-sha256; d={domain}; s=mail; bh={body_hash};\n b={signature}")
    lines.append(f"X-Spam-Status: No, score=-{rng.randint(0, 30) / 10} required=5.0")
    return lines


def _folded(text: str, width: int = 70) -> str:
    return "\n\t".join(text[i : i + width] for i in range(0, len(text), width))


def _render(
    rng: random.Random,
    index: int,
    date: dt.datetime,
    sender: tuple[str, str],
    recipient: tuple[str, str],
    subject: str,
    lang: str,
    message_id: str | None,
    references: list[str],
    text: str,
    big: bool,
) -> bytes:
    headers = _trace_headers(rng, date, sender[1])
    subject_charset = "iso-8859-1" if lang in ("de", "fr") and rng.random() < 0.4 and _latin1(subject) else "utf-8"
    local = date.astimezone(dt.timezone(dt.timedelta(hours=rng.choice([-5, 0, 1, 2, 3, 8, 9]))))
    headers += [
        "From: " + _address(*sender, rng),
        "To: " + _address(*recipient, rng),
    ]
    if rng.random() < 0.15:
        headers.append("Cc: " + ", ".join(_address(*_person(rng, lang), rng) for _ in range(rng.randint(1, 3))))
    headers += [_header("Subject", subject, subject_charset), "Date: " + format_datetime(local)]
    if message_id:
        headers.append("Message-ID: " + message_id)
    if references:
        headers.append("In-Reply-To: " + references[-1])
        headers.append("References: " + "\n ".join(references))
    headers.append("MIME-Version: 1.0")
    headers.append(
        rng.choice(
            [
                "X-Mailer: Microsoft Outlook 16.0",
                "User-Agent: Mozilla Thunderbird",
                "X-Mailer: Apple Mail (2.3731.700.6)",
                "User-Agent: Roundcube Webmail/1.6.5",
            ]
        )
    )

    kind = rng.random()
    if kind < 0.06 and not big and not references:
        body = _encode_part(rng, "text/html", _newsletter(rng, lang), lang)
    elif kind < 0.53:
        body = _encode_part(rng, "text/plain", text, lang)
    else:
        boundary = f"_000_{rng.getrandbits(80):020x}_"
        body = (
            f'Content-Type: multipart/alternative;\n\tboundary="{boundary}"\n\n'
            f"--{boundary}\n{_encode_part(rng, 'text/plain', text, lang)}\n"
            f"--{boundary}\n{_encode_part(rng, 'text/html', _html(text, rng), lang)}\n"
            f"--{boundary}--\n"
        )
    if big:
        filename, content_type, data = _attachment(rng, lang)
        boundary = f"----=_Part_{index}_{rng.getrandbits(40)}"
        disposition = f'Content-Disposition: attachment;\n filename="{filename}"'
        if not filename.isascii():  # what Outlook does, though RFC 2231 says otherwise
            disposition = f'Content-Disposition: attachment;\n filename="{Header(filename, "utf-8").encode()}"'
        body = (
            f'Content-Type: multipart/mixed;\n\tboundary="{boundary}"\n\n'
            "This is a multi-part message in MIME format.\n\n"
            f"--{boundary}\n{body}\n"
            f'--{boundary}\nContent-Type: {content_type}; name="{filename if filename.isascii() else "file"}"\n'
            f"Content-Transfer-Encoding: base64\n{disposition}\n\n{_base64_lines(data)}"
            f"--{boundary}--\n"
        )
    raw = "\n".join(headers) + "\n" + body
    return raw.encode("utf-8").replace(b"\n", b"\r\n")


# -- the on-disk cache and the Dovecot loader ------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mailbox:
    """A generated Maildir in the cache, and its figures."""

    path: Path  # the Maildir (has cur/)
    messages: int
    wire_bytes: int  # sum of message sizes as IMAP sends them (CRLF)
    disk_bytes: int  # sum of file sizes (LF, as Dovecot stores them)
    median_bytes: int
    with_attachment: int
    without_message_id: int
    seed: int

    @property
    def files(self) -> list[Path]:
        return sorted((self.path / "cur").iterdir())

    def as_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["path"] = str(self.path)
        data["wire_mb"] = round(self.wire_bytes / 1e6, 1)
        return data


def cache_path(n: int, seed: int = 1) -> Path:
    return MAILBOXES / f"n{n}-s{seed}-v{GENERATOR_VERSION}"


def ensure_mailbox(n: int, seed: int = 1, progress: bool = True) -> Mailbox:
    """The cached Maildir of ``generate(n, seed)``, written once (a minute for 10,000)."""
    path = cache_path(n, seed)
    manifest = path / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        return Mailbox(path=path, **{k: v for k, v in data.items() if k in _MAILBOX_FIELDS})
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("cur", "new", "tmp"):
        (tmp / sub).mkdir(parents=True)
    sizes: list[int] = []
    disk = attachments = no_id = 0
    started = time.perf_counter()
    for index, (date, raw) in enumerate(_generate(n, seed)):
        stored = raw.replace(b"\r\n", b"\n")
        stamp = int(date.timestamp())
        # Dovecot's own naming: the S= (file size) and W= (CRLF size) fields spare it a stat.
        name = f"{stamp}.M{index:06d}P{seed}.bench,S={len(stored)},W={len(raw)}:2,S"
        target = tmp / "cur" / name
        target.write_bytes(stored)
        os.utime(target, (stamp, stamp))  # Dovecot's INTERNALDATE is the file's mtime
        sizes.append(len(raw))
        disk += len(stored)
        attachments += len(raw) > 400_000
        no_id += b"\r\nMessage-ID: " not in raw.partition(b"\r\n\r\n")[0]
        if progress and (index + 1) % 2000 == 0:
            print(f"  generated {index + 1}/{n} messages", file=sys.stderr, flush=True)
    mailbox = Mailbox(
        path=path,
        messages=n,
        wire_bytes=sum(sizes),
        disk_bytes=disk,
        median_bytes=int(statistics.median(sizes)) if sizes else 0,
        with_attachment=attachments,
        without_message_id=no_id,
        seed=seed,
    )
    data = mailbox.as_dict()
    data.pop("path")
    data["generator_version"] = GENERATOR_VERSION
    data["generated_in_s"] = round(time.perf_counter() - started, 1)
    (tmp / "manifest.json").write_text(json.dumps(data, indent=1) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return dataclasses.replace(mailbox, path=path)


_MAILBOX_FIELDS = {f.name for f in dataclasses.fields(Mailbox)} - {"path"}


def load_into(dovecot, user: str, n: int, seed: int = 1, verify: bool = True) -> Mailbox:
    """Put ``generate(n, seed)`` into ``user``'s INBOX of a private Dovecot, fast.

    The cached Maildir files are hard-linked (copied across file systems) into
    ``<base>/mail/<user>/cur`` - the layout of ``mail_location = maildir:<base>/mail/%u``
    - and handed to the uid Dovecot accesses mail as. Dovecot never rewrites a message
    file (a flag change renames its own link), so the cache stays intact. The mailbox must
    be new: call this before anything logged in as ``user``. With ``verify`` (Dovecot
    must be running), STATUS must report ``n`` messages.
    """
    mailbox = ensure_mailbox(n, seed)
    root = Path(dovecot.base) / "mail" / user
    if root.exists():
        raise RuntimeError(f"{root} exists already: load_into needs a fresh mailbox")
    uid, gid = dovecot._mail_ids()
    as_root = os.geteuid() == 0
    for sub in ("", "cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(root / sub, 0o700)
        if as_root:
            os.chown(root / sub, uid, gid)
    if as_root:
        os.chown(root.parent, uid, gid)
    for source in mailbox.files:
        target = root / "cur" / source.name
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
        if as_root:
            os.chown(target, uid, gid)
    if verify:
        count = dovecot.message_count(user)
        if count != n:
            raise RuntimeError(f"Dovecot reports {count} messages in {user}'s INBOX, expected {n}")
    return mailbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mailgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eml", type=Path, help="also write the messages as N.eml files into this directory")
    args = parser.parse_args(argv)
    for n in args.messages:
        mailbox = ensure_mailbox(n, args.seed)
        print(json.dumps(mailbox.as_dict(), indent=1))
        if args.eml:
            args.eml.mkdir(parents=True, exist_ok=True)
            for index, raw in enumerate(generate(n, args.seed)):
                (args.eml / f"{index:06d}.eml").write_bytes(raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
