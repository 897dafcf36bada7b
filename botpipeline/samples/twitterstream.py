"""Deterministic generator of Internet Archive "Twitter Stream Grab"-shaped input.

The output imitates the archive.org Twitter Stream Grab (the 1 % sample stream, API v1.1):
one tar per day whose members are per-minute JSON-lines files, alternately ``.json.bz2`` and
``.json.gz``.  Every line has the field set and key order of the real stream (checked against a
real minute, 2021-01-01 07:29 UTC): tweets (plain, replies, retweets with a nested
``retweeted_status``, quotes with ``quoted_status`` / ``quoted_status_permalink``, long tweets
with ``truncated: true`` and ``extended_tweet``, photos with ``extended_entities``), ``delete``
notices and the rarer ``limit``, ``scrub_geo``, ``status_withheld`` and ``user_withheld``
notices.  Lines end with ``\\r\\n`` as in the real files.  JSON is written by orjson, i.e. as
UTF-8 with ``/`` unescaped (the archive escapes ``\\/`` and non-ASCII as ``\\uXXXX``; both are
the same JSON).  The content is synthetic, with a planted population whose ground truth is
written next to the data.

API
---
``generate(out_dir, start_date, days=1, tweets_per_day=4000, seed=0, *, minutes_per_day=None,
layout="MM/DD/HH/mm", faults=False, workers=1, population=None, progress=None) -> dict``

* ``out_dir``: root folder; writes ``<out>/incoming/twitterstream/<YYYY-MM-DD>/
  twitter-stream-<YYYY-MM-DD>.tar`` and ``<out>/truth/twitterstream/...`` (see below).
* ``start_date``: ``"YYYY-MM-DD"`` or ``datetime.date``; days are generated in order.
* ``tweets_per_day``: unique tweets per day (duplicate re-emissions, notices and fault lines
  come on top).  It also sizes the account population (``max(400, tweets_per_day // 4)``
  accounts unless ``population.accounts`` is set), so keep it fixed across calls that should
  share accounts.
* ``minutes_per_day``: ``None`` = all 1,440 minutes; ``N`` = N minutes spread evenly over the
  day (minute ``j`` is minute-of-day ``j * 1440 // N``), so a small sample still spans 24 h.
* ``layout``: inner path pattern of the members, one of ``LAYOUTS`` -- ``"MM/DD/HH/mm"``
  (``01/02/00/24.json.gz``), ``"YYYY/MM/DD/HH/mm"`` (``2021/01/02/00/24.json.gz``),
  ``"YYYYMMDD/YYYYMMDDHHMMSS"`` (``20210102/20210102002400.json.gz``) -- or a sequence of them
  used per day in turn, or ``"mixed"`` (= all three in that order, cycling).
* ``faults``: inject, per day, one macOS ``._`` resource-fork member (junk bytes), one empty
  (0-byte) member, two lines of cut-off JSON, one line with non-UTF-8 bytes (still JSON when
  decoded with replacement), one tweet object without ``id``/``id_str`` and a few blank
  keep-alive lines ("\\r\\n").
* ``workers``: processes over minutes (multiprocessing); output does not depend on it.
* ``population``: ``PopulationConfig`` (groups, sizes, shares); ``None`` = defaults.
* Returns ``{"YYYY-MM-DD": truth_dict, ...}`` (the per-day truth written to disk).

The same arguments and seed give byte-identical files (gzip mtime 0, fixed tar metadata, every
minute a pure function of (seed, day, minute)).  ``python -m botpipeline.samples.twitterstream
--out data --start 2021-01-01 --days 3 --tweets-per-day 4000 --seed 7 --faults`` runs it.

Tar members
-----------
Directory entries for every folder (as ``tar cf`` writes them), then per selected minute one
file; the faulty ``._<name>`` member directly precedes its sibling.  Even minute indexes are
bz2, odd ones gzip; every third bz2 member is multi-stream (2-3 bz2 streams concatenated).
Top-level timestamps of a minute file lie in that minute (UTC) -- except stream duplicates,
which are byte-identical re-emissions of a tweet from one of the 3 previous minute files.

Population and ground truth
---------------------------
Humans (majority; diurnal rhythm), automated accounts (``automated_share`` of accounts, about a
third of the volume: young accounts, generic screen names, default profile images, empty or
"bot" bios, many friends / few followers, bot ``source`` apps, around-the-clock templated
near-duplicate posts, rapid-fire reply bursts seconds apart) and planted coordinated groups
(members created within days of each other, similar bios; they retweet the same group source
tweets within about a minute, each member skipping some, and post near-identical texts).
Retweets of ordinary accounts go to Zipf-popular tweets that are not in the data (as in a 1 %
sample); replies mostly point at ids not in the data, some at earlier tweets of the same day or
of previous days.  About 0.1 % of tweets are re-emitted in one of the next 3 minute files and
1 % get a ``delete`` notice in one of the next 5 (same day); most delete notices name tweets
not in the data.

``<out>/truth/twitterstream/``:

* ``accounts.csv``: ``user_id,screen_name,kind,group_id`` for the whole population
  (kind in human / automated / coordinated; group_id empty unless coordinated).
* ``<out>/incoming/labels/generated_sample/labels.csv``: the same kinds as a label set
  (``platform,user_id,label``) for the learned bot model.
* ``groups.csv``: ``group_id,members,source_tweets`` (distinct shared source tweet ids over
  the generated days); ``group_sources.csv``: ``group_id,date,source_tweet_id,source_user_id,
  retweeters``.
* ``<YYYY-MM-DD>.json`` with these counts for that day's tar:
  ``members`` (regular-file members, including the dot-file and empty one),
  ``directory_members``, ``dotfile_members``, ``empty_members``, ``bz2_members``,
  ``gz_members``, ``multistream_bz2_members``; over data lines of non-dot-file members:
  ``lines`` (non-blank lines), ``blank_lines``, ``tweet_lines`` (JSON objects with
  ``created_at`` and ``id_str``), ``unique_tweets`` (distinct ``id_str``),
  ``duplicate_tweet_lines``; over unique tweets: ``replies`` (``in_reply_to_status_id`` not
  null), ``retweets`` (``retweeted_status``), ``quotes`` (top-level ``quoted_status``, so
  retweets of quotes count), ``extended`` (top-level ``extended_tweet``), ``langs``,
  ``tweets_by_account_kind``, ``replies_to_tweets_in_data`` (``same_day`` /
  ``previous_days``), ``coordinated_retweets``, ``coordinated_posts``, ``reply_burst_tweets``;
  ``delete_notices``, ``deletes_of_tweets_in_data``, ``other_notices`` (by type) and
  ``bad_lines`` by reason (``truncated_json``, ``non_utf8``, ``missing_id``).
  ``lines = tweet_lines + delete_notices + sum(other_notices) + sum(bad_lines)``.
"""

from __future__ import annotations

import argparse
import bisect
import bz2
import calendar
import csv
import dataclasses
import datetime as _dt
import functools
import gzip
import io
import json
import math
import multiprocessing
import os
import random
import sys
import tarfile
import time
from typing import Any, Callable, Iterable, Sequence

import orjson

__all__ = ["LAYOUTS", "PopulationConfig", "generate", "member_path", "main"]

LAYOUTS = ("MM/DD/HH/mm", "YYYY/MM/DD/HH/mm", "YYYYMMDD/YYYYMMDDHHMMSS")
TWEPOCH = 1288834974657  # Twitter snowflake epoch (ms)
_M64 = (1 << 64) - 1

# --------------------------------------------------------------------------------------------
# configuration


@dataclasses.dataclass(frozen=True)
class PopulationConfig:
    """Knobs of the synthetic population (defaults give the documented shares)."""

    accounts: int | None = None  # None: max(400, tweets_per_day // 4)
    automated_share: float = 0.10  # share of accounts
    groups: int = 6
    group_size: tuple[int, int] = (8, 25)
    group_participation: float = 0.85  # chance a member joins a given burst / campaign post
    # volume shares (of tweets_per_day)
    automated_volume: float = 0.28  # regular slots authored by automated accounts
    reply_burst_volume: float = 0.04  # rapid-fire reply bursts by automated accounts
    coordinated_volume: float = 0.02  # regular slots authored by group members
    group_retweet_volume: float = 0.06  # planted coordinated retweets
    group_post_volume: float = 0.015  # planted near-identical posts
    duplicate_rate: float = 0.001
    delete_rate: float = 0.01  # share of tweets deleted later the same day
    foreign_delete_rate: float = 0.05  # delete notices for tweets not in the data, per tweet


# --------------------------------------------------------------------------------------------
# deterministic hashing


def _sm(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _mix(*vals: int) -> int:
    h = 0x243F6A8885A308D3
    for v in vals:
        h = _sm(h ^ _sm(v & _M64))
    return h


def _unit(*vals: int) -> float:
    return (_mix(*vals) >> 11) * (1.0 / (1 << 53))


# tags for _mix
(T_POP, T_DAY, T_MIN, T_POOL, T_CELEB, T_HUB, T_GSRC, T_MINX, T_FAULT, T_GRP) = range(1, 11)

# --------------------------------------------------------------------------------------------
# vocabulary

LANGS = ("en", "ja", "es", "pt", "ar", "ko", "fr", "tr")
LANG_W = (0.44, 0.18, 0.12, 0.08, 0.07, 0.05, 0.04, 0.02)

PHRASES = {
    "en": [
        "Happy new year everyone", "can't believe it's already 2021",
        "this song has been stuck in my head all day", "finally finished the book I was reading",
        "the coffee this morning hit different", "anyone else watching the game tonight?",
        "my cat just knocked over my plant again", "so tired but can't sleep",
        "new year, same me honestly", "grateful for all of you", "that episode was insane",
        "working from home again today", "just saw the best sunset",
        "why is it so cold outside", "going to try a new recipe tonight", "I need more sleep",
        "this is the content I signed up for", "okay but who asked",
        "can we talk about how good this is", "not me crying at a commercial",
        "the vibes are immaculate", "stayed up way too late",
        "manifesting good things this year", "hot take: pineapple belongs on pizza",
        "remember to drink water", "lowkey obsessed with this", "traffic was terrible today",
        "watching old movies all night", "the group chat is chaos right now",
        "my resolution is to read more", "someone please explain this to me",
        "I love this so much", "this made my day", "weekend plans: absolutely nothing",
        "going for a run before work", "the new album is a masterpiece",
        "so done with this pandemic", "cooking dinner for the family",
        "best thing I've seen all week", "my phone battery dies so fast",
    ],
    "ja": [
        "今年もよろしくお願いします", "あけましておめでとうございます", "眠すぎる",
        "今日のご飯おいしかった", "推しが尊い", "ガチャ爆死した", "初詣行ってきた",
        "寒すぎて外出たくない", "お正月休み最高", "明日から仕事つらい", "新しいゲーム始めた",
        "ライブ楽しみ", "猫かわいい", "お餅食べすぎた", "年賀状書かなきゃ",
        "今年の目標は早起き", "配信見てる", "このアニメ面白い", "おやすみなさい",
        "紅白見ながら年越しした",
    ],
    "es": [
        "Feliz año nuevo a todos", "no puedo creer que ya sea 2021", "qué frío hace hoy",
        "me encanta esta canción", "necesito vacaciones", "buenos días mundo",
        "hoy toca descansar", "que tengan un lindo día", "la cena de anoche estuvo increíble",
        "este año será mejor", "no puedo dormir", "vamos con todo", "qué partido tan bueno",
        "extraño a mis amigos", "gracias por todo", "mañana empiezo la dieta",
    ],
    "pt": [
        "Feliz ano novo", "bom dia pessoal", "que calor hoje", "não aguento mais",
        "amo essa música", "saudade de vocês", "esse ano vai ser melhor", "preciso dormir",
        "que jogo incrível", "vamos que vamos", "obrigado a todos", "hoje é dia de descanso",
    ],
    "ar": [
        "سنة سعيدة للجميع", "صباح الخير", "الحمد لله على كل حال", "اللهم بلغنا ما نتمنى",
        "يوم جميل", "اشتقت لكم", "كل عام وانتم بخير", "ربي يسعدكم", "مساء الخير",
        "الله يحفظكم",
    ],
    "ko": [
        "새해 복 많이 받으세요", "오늘 너무 춥다", "이 노래 너무 좋아", "보고 싶어",
        "잠이 안 와", "올해도 잘 부탁해", "진짜 대박", "배고파",
    ],
    "fr": [
        "Bonne année à tous", "il fait trop froid", "j'adore cette chanson", "bonne journée",
        "trop fatigué ce soir", "enfin le week-end", "merci pour tout", "c'est incroyable",
    ],
    "tr": [
        "Mutlu yıllar herkese", "günaydın", "çok yorgunum", "bu şarkıyı çok seviyorum",
        "iyi geceler", "harika bir gün",
    ],
}
SEP = {"ja": "", "ko": " ", "ar": " ", "en": ". ", "es": ". ", "pt": ". ", "fr": ". ",
       "tr": ". "}
HASHTAGS = {
    "en": ["NewYear2021", "HappyNewYear", "COVID19", "NowPlaying", "MondayMotivation", "BTS",
           "NFL", "music", "photography", "gaming", "Bitcoin", "BlackLivesMatter"],
    "ja": ["初詣", "あけおめ", "拡散希望", "相互フォロー", "ウマ娘", "紅白歌合戦"],
    "es": ["FelizAñoNuevo", "Feliz2021", "FelizMartes", "LaLiga"],
    "pt": ["FelizAnoNovo", "BBB21", "Flamengo"],
    "ar": ["عام_جديد", "السعودية", "الكويت"],
    "ko": ["새해", "방탄소년단", "NCT"],
    "fr": ["BonneAnnée", "PSG"],
    "tr": ["MutluYıllar", "Galatasaray"],
}
EMOJI = ["😂", "❤️", "😍", "🔥", "🙏", "😭", "✨", "👍", "🎉", "💯", "😊", "🤔", "👀", "💪", "🥺"]
FIRST = ["James", "Mary", "John", "Linda", "Michael", "Sarah", "David", "Emma", "Chris", "Olivia",
         "Daniel", "Sophia", "Matt", "Chloe", "Ryan", "Grace", "Kevin", "Mia", "Jason", "Ava",
         "Carlos", "Lucia", "Diego", "Camila", "Joao", "Ana", "Pedro", "Julia", "Ahmed", "Fatima",
         "Omar", "Layla", "Yuki", "Haruto", "Sakura", "Ren", "Minji", "Jisoo", "Pierre", "Chloé",
         "Emre", "Elif"]
LAST = ["Smith", "Johnson", "Brown", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Silva",
        "Santos", "Martin", "Lee", "Kim", "Park", "Tanaka", "Sato", "Hassan", "Ali", "Dubois",
        "Yilmaz", "Rossi", "Moore", "Clark", "Lewis"]
NICK = ["sunny", "moon", "pixel", "coffee", "panda", "ghost", "star", "tiger", "cookie", "nova",
        "echo", "lucky", "mochi", "river", "cloud", "blue", "storm", "peach", "kiwi", "shadow"]
JA_NAMES = ["ゆい", "まよごん", "たけし", "さくら🌸", "みかん", "ぽいやん", "はると", "りん", "そら"]
AR_NAMES = ["محمد", "فاطمة", "عبدالله", "نورة", "خالد", "سارة", "أحمد"]
KO_NAMES = ["민지", "지수", "하늘", "서연", "나의 8월에게"]
BIOS = {
    "en": ["Coffee lover ☕", "Mom of two. Runner.", "Dreamer. Believer. Achiever.",
           "football fan ⚽", "she/her", "Photographer 📷", "living my best life",
           "Student at State U", "Engineer by day, gamer by night", "Opinions are my own",
           "dog person 🐶", "music is life 🎧", "Just here for the memes"],
    "ja": ["アニメとゲームが好きです", "無言フォロー失礼します", "社会人3年目", "猫と暮らしてます",
           "推し活してます"],
    "es": ["Amante del café", "Futbolero de corazón ⚽", "Estudiante", "Vive y deja vivir"],
    "pt": ["Apaixonado por futebol", "Estudante", "Deus é fiel 🙏"],
    "ar": ["سبحان الله وبحمده", "طالب جامعي", "حساب شخصي"],
    "ko": ["일상 계정", "음악 좋아해요"],
    "fr": ["Amateur de café", "Étudiant"],
    "tr": ["Öğrenci", "Futbol aşığı"],
}
CITIES = ["New York, NY", "London", "Los Angeles, CA", "Toronto", "東京 新宿区", "大阪",
          "Madrid", "Ciudad de México", "Buenos Aires", "São Paulo", "Rio de Janeiro",
          "الرياض", "Seoul", "Paris", "Istanbul", "Chicago, IL", "Lagos", "Manila"]
SOURCES = [
    ('<a href="http://twitter.com/download/android" rel="nofollow">Twitter for Android</a>', 40),
    ('<a href="http://twitter.com/download/iphone" rel="nofollow">Twitter for iPhone</a>', 37),
    ('<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>', 10),
    ('<a href="http://twitter.com/#!/download/ipad" rel="nofollow">Twitter for iPad</a>', 3),
    ('<a href="https://about.twitter.com/products/tweetdeck" rel="nofollow">TweetDeck</a>', 1),
    ('<a href="http://instagram.com" rel="nofollow">Instagram</a>', 1),
]
BOT_SOURCES = [
    '<a href="http://twittbot.net/" rel="nofollow">twittbot.net</a>',
    '<a href="https://botbird.net" rel="nofollow">Botbird tweets</a>',
    '<a href="https://dlvrit.com/" rel="nofollow">dlvr.it</a>',
    '<a href="https://ifttt.com" rel="nofollow">IFTTT</a>',
    '<a href="https://buffer.com" rel="nofollow">Buffer</a>',
    '<a href="https://example.org/autopost" rel="nofollow">autopost-app</a>',
]
WEB_SOURCE = SOURCES[2][0]
HEADLINES = ["Markets open higher as investors eye new stimulus",
             "Storm warning issued for coastal areas", "Officials announce new restrictions",
             "Tech giant unveils new device", "Vaccine rollout expands to more cities",
             "Local team wins championship", "Fuel prices rise for third week",
             "Scientists report breakthrough in battery research",
             "City council approves new budget", "Airport delays expected after snowfall"]
BOT_THINGS = ["free followers", "crypto signals", "cheap followers", "daily giveaways",
              "exclusive deals", "free gift cards"]
CRYPTO = ["BTC", "ETH", "XRP", "DOGE", "ADA", "LTC"]
WEATHER = ["clear sky", "light rain", "overcast", "snow", "fog", "scattered clouds"]
QUOTES = [("The best way out is always through", "Robert Frost"),
          ("Stay hungry, stay foolish", "Steve Jobs"),
          ("Be yourself; everyone else is already taken", "Oscar Wilde"),
          ("Simplicity is the ultimate sophistication", "Leonardo da Vinci")]
JOBS = ["Software Engineer", "Nurse", "Delivery Driver", "Data Analyst", "Sales Associate"]
BOT_BIOS = ["", "", "automated", "Automated account", "bot", "I am a bot. I tweet every hour.",
            "automated account - not monitored", "🤖 bot", "news bot", "auto-posting every few minutes"]
BOT_TOPICS = ["news", "crypto", "weather", "deals", "quotes", "jobs", "alerts", "promo"]
SLOGAN_WORDS = ["Freedom", "Justice", "Truth", "Change", "Unity", "Future", "Reform", "Nation"]
SLOGANS = {
    "en": ["We demand {w} now", "Stand together for {w}", "The people want {w}",
           "Say no to the lies, say yes to {w}", "Everyone must know the truth about {w}"],
    "es": ["Exigimos {w} ya", "Juntos por {w}", "El pueblo quiere {w}"],
    "pt": ["Queremos {w} já", "Juntos pela {w}", "O povo quer {w}"],
    "ja": ["{w}を求めます", "みんなで{w}を守ろう", "{w}のために拡散してください"],
    "ar": ["نطالب بـ {w} الآن", "معا من أجل {w}"],
    "ko": ["{w}를 원한다", "함께 {w}를 지키자"],
    "fr": ["Nous exigeons {w}", "Ensemble pour {w}"],
    "tr": ["{w} istiyoruz", "{w} için birlikte"],
}
REPLY_SPAM = ["Check out my profile for {thing}! 🔥", "Great post! Follow back? 🙏",
              "DM me for {thing} 💰", "Nice! Visit my bio for {thing}",
              "🔥🔥 {thing} here, link in bio 👉", "Wow amazing! Get {thing} now ✅"]
DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MON_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"

DEFAULT_IMG = "http://abs.twimg.com/sticky/default_profile_images/default_profile_normal.png"
DEFAULT_IMG_S = "https://abs.twimg.com/sticky/default_profile_images/default_profile_normal.png"
THEME1 = "http://abs.twimg.com/images/themes/theme1/bg.png"
THEME1_S = "https://abs.twimg.com/images/themes/theme1/bg.png"

# kinds of tweet slots
K_ORIG, K_REPLY, K_RT, K_QUOTE, K_BOTPOST, K_BOTREPLY, K_GRT, K_GPOST, K_BURST = range(9)
RT_KINDS = (K_RT, K_GRT)
# account kinds
A_HUMAN, A_BOT, A_COORD = 0, 1, 2
ACCOUNT_KIND_NAMES = ("human", "automated", "coordinated")

_SOURCE_CUM: list[int] = []
_acc = 0
for _s, _w in SOURCES:
    _acc += _w
    _SOURCE_CUM.append(_acc)
del _acc

# --------------------------------------------------------------------------------------------
# small helpers


def _fmt_time(ms: int) -> str:
    t = time.gmtime(ms // 1000)
    return (f"{DAY_ABBR[t.tm_wday]} {MON_ABBR[t.tm_mon - 1]} {t.tm_mday:02d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000 {t.tm_year}")


def _snowflake(ms: int, dc: int, worker: int, seq: int) -> int:
    return ((ms - TWEPOCH) << 22) | ((dc & 31) << 17) | ((worker & 31) << 12) | (seq & 4095)


def _tco(rng: random.Random) -> str:
    return "https://t.co/" + "".join(rng.choices(ALNUM, k=10))


def _rand_str(rng: random.Random, alphabet: str, k: int) -> str:
    return "".join(rng.choices(alphabet, k=k))


def _pick_source(rng: random.Random) -> str:
    return SOURCES[bisect.bisect_right(_SOURCE_CUM, rng.random() * _SOURCE_CUM[-1])][0]


@functools.lru_cache(maxsize=None)
def _zipf_cum(n: int, s: float = 1.1) -> tuple[float, ...]:
    acc = 0.0
    out = []
    for r in range(1, n + 1):
        acc += 1.0 / r ** s
        out.append(acc)
    return tuple(out)


def _zipf(rng: random.Random, n: int) -> int:
    cum = _zipf_cum(n)
    return min(n - 1, bisect.bisect_right(cum, rng.random() * cum[-1]))


def _lognorm_int(rng: random.Random, median: float, sigma: float, lo: int = 0,
                 hi: int = 50_000_000) -> int:
    return max(lo, min(hi, int(median * math.exp(rng.gauss(0.0, sigma)))))


class _TB:
    """Text builder that records entities with code-point indices."""

    __slots__ = ("parts", "n", "hashtags", "urls", "mentions", "symbols")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0
        self.hashtags: list[dict] = []
        self.urls: list[dict] = []
        self.mentions: list[dict] = []
        self.symbols: list[dict] = []

    def add(self, s: str) -> None:
        if s:
            self.parts.append(s)
            self.n += len(s)

    def hashtag(self, tag: str) -> None:
        a = self.n
        self.add("#" + tag)
        self.hashtags.append({"text": tag, "indices": [a, self.n]})

    def symbol(self, sym: str) -> None:
        a = self.n
        self.add("$" + sym)
        self.symbols.append({"text": sym, "indices": [a, self.n]})

    def mention(self, sn: str, name: str, uid: int) -> None:
        a = self.n
        self.add("@" + sn)
        self.mentions.append({"screen_name": sn, "name": name, "id": uid, "id_str": str(uid),
                              "indices": [a, self.n]})

    def url(self, tco: str, expanded: str) -> None:
        a = self.n
        self.add(tco)
        disp = expanded.split("://", 1)[-1]
        if len(disp) > 26:
            disp = disp[:26] + "…"
        self.urls.append({"url": tco, "expanded_url": expanded, "display_url": disp,
                          "indices": [a, self.n]})

    def text(self) -> str:
        return "".join(self.parts)

    def entities(self) -> dict:
        return {"hashtags": self.hashtags, "urls": self.urls, "user_mentions": self.mentions,
                "symbols": self.symbols}


def _shift(ents: list[dict], k: int) -> list[dict]:
    out = []
    for e in ents:
        e2 = dict(e)
        e2["indices"] = [e["indices"][0] + k, e["indices"][1] + k]
        out.append(e2)
    return out


def _cut_point(ents: dict, limit: int, text: str) -> int:
    c = limit
    changed = True
    while changed:
        changed = False
        for key in ("hashtags", "urls", "user_mentions", "symbols", "media"):
            for e in ents.get(key, ()):
                a, b = e["indices"]
                if a < c < b:
                    c = a
                    changed = True
    # prefer a word boundary if one is close
    sp = text.rfind(" ", 0, c + 1)
    if sp > c - 15 and sp > 0:
        c = sp
    return c


def _within(ents: dict, end: int) -> dict:
    return {k: [e for e in ents[k] if e["indices"][1] <= end]
            for k in ("hashtags", "urls", "user_mentions", "symbols")}


def _assemble(created_ms: int, tid: int, text: str, dtr, source: str, reply, user,
              rt=None, quote=None, ext=None, counts=(0, 0, 0, 0), entities=None,
              ext_entities=None, sensitive=None, lang="en", top=True) -> dict:
    t: dict[str, Any] = {"created_at": _fmt_time(created_ms), "id": tid, "id_str": str(tid),
                         "text": text}
    if dtr is not None:
        t["display_text_range"] = dtr
    t["source"] = source
    t["truncated"] = ext is not None
    if reply is not None:
        rid, ruid, rsn = reply
        t["in_reply_to_status_id"] = rid
        t["in_reply_to_status_id_str"] = str(rid)
        t["in_reply_to_user_id"] = ruid
        t["in_reply_to_user_id_str"] = str(ruid)
        t["in_reply_to_screen_name"] = rsn
    else:
        t["in_reply_to_status_id"] = None
        t["in_reply_to_status_id_str"] = None
        t["in_reply_to_user_id"] = None
        t["in_reply_to_user_id_str"] = None
        t["in_reply_to_screen_name"] = None
    t["user"] = user
    t["geo"] = None
    t["coordinates"] = None
    t["place"] = None
    t["contributors"] = None
    if rt is not None:
        t["retweeted_status"] = rt
    if quote is not None:
        qid, qstatus, qperm = quote
        t["quoted_status_id"] = qid
        t["quoted_status_id_str"] = str(qid)
        t["quoted_status"] = qstatus
        t["quoted_status_permalink"] = qperm
    t["is_quote_status"] = quote is not None
    if ext is not None:
        t["extended_tweet"] = ext
    t["quote_count"], t["reply_count"], t["retweet_count"], t["favorite_count"] = counts
    t["entities"] = entities
    if ext_entities is not None:
        t["extended_entities"] = ext_entities
    t["favorited"] = False
    t["retweeted"] = False
    if sensitive is not None:
        t["possibly_sensitive"] = sensitive
    t["filter_level"] = "low"
    t["lang"] = lang
    if top:
        t["timestamp_ms"] = str(created_ms)
    return t


def _media(rng: random.Random, tweet_ms: int, tid: int, sn: str, start: int) -> tuple[str, dict]:
    mid = _snowflake(tweet_ms - rng.randrange(500, 20000), 28 + rng.randrange(4),
                     rng.getrandbits(5), rng.getrandbits(12))
    key = _rand_str(rng, ALNUM, 15)
    tco = _tco(rng)
    w, h = rng.choice(((1080, 1350), (1200, 675), (2048, 1536), (750, 1334), (640, 640)))

    def fit(m):
        s = min(1.0, m / max(w, h))
        return {"w": int(w * s), "h": int(h * s), "resize": "fit"}

    obj = {"id": mid, "id_str": str(mid), "indices": [start, start + len(tco)],
           "media_url": f"http://pbs.twimg.com/media/{key}.jpg",
           "media_url_https": f"https://pbs.twimg.com/media/{key}.jpg",
           "url": tco, "display_url": "pic.twitter.com/" + tco[13:],
           "expanded_url": f"https://twitter.com/{sn}/status/{tid}/photo/1", "type": "photo",
           "sizes": {"thumb": {"w": 150, "h": 150, "resize": "crop"}, "medium": fit(1200),
                     "small": fit(680), "large": fit(2048)}}
    return tco, obj


def _finalize(rng: random.Random, tb: _TB, tid: int, ms: int, sn: str, lead: int,
              media: bool) -> tuple:
    """Return (text, display_text_range, extended_tweet, entities, extended_entities,
    possibly_sensitive) for a composed tweet body."""
    full = tb.text()
    ents = tb.entities()
    n = len(full)
    if n <= 140:
        if media and n + 24 <= 140:
            tco, mobj = _media(rng, ms, tid, sn, n + 1)
            ents["media"] = [mobj]
            return full + " " + tco, [lead, n], None, ents, {"media": [mobj]}, False
        return full, ([lead, n] if lead else None), None, ents, None, None
    c = _cut_point(ents, 115, full)
    prefix = full[:c].rstrip()
    tco = _tco(rng)
    p = len(prefix)
    text = prefix + "… " + tco
    top = _within(ents, p)
    top["urls"] = top["urls"] + [{"url": tco,
                                  "expanded_url": f"https://twitter.com/i/web/status/{tid}",
                                  "display_url": "twitter.com/i/web/status/1…",
                                  "indices": [p + 2, p + 2 + len(tco)]}]
    ext = {"full_text": full, "display_text_range": [lead, n], "entities": ents}
    return text, ([lead, len(text)] if lead else None), ext, top, None, None


# --------------------------------------------------------------------------------------------
# population


class _Account:
    __slots__ = ("idx", "uid", "sn", "name", "kind", "group", "lang", "sub", "created_ms",
                 "created_str", "location", "url", "bio", "protected", "verified", "followers",
                 "friends", "listed", "favs", "statuses", "status_rate", "follower_rate",
                 "geo", "translator", "default_profile", "default_image", "img", "banner",
                 "link_color", "source", "templates", "old_theme")


# (created_at ms, user id) anchors of the pre-2016 sequential user ids
_UID_ANCHORS = ((1142000000000, 12), (1230768000000, 20_000_000), (1293840000000, 230_000_000),
                (1325376000000, 450_000_000), (1356998400000, 1_100_000_000),
                (1388534400000, 2_300_000_000), (1420070400000, 2_950_000_000),
                (1451606400000, 4_700_000_000))


def _uid_for(created_ms: int, rng: random.Random) -> int:
    # accounts created from 2016 on have snowflake ids; older ones sequential ids below ~4.7e9
    if created_ms >= _UID_ANCHORS[-1][0]:
        return _snowflake(created_ms, rng.randrange(32), rng.getrandbits(5), rng.getrandbits(12))
    for (t0, u0), (t1, u1) in zip(_UID_ANCHORS, _UID_ANCHORS[1:]):
        if created_ms < t1:
            frac = max(0.0, (created_ms - t0) / (t1 - t0))
            return int(u0 + frac * (u1 - u0)) + rng.randrange(100_000)
    raise AssertionError("unreachable")


def _human_name(rng: random.Random, lang: str) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    r = rng.random()
    if r < 0.25:
        sn = f"{first}{last}"
    elif r < 0.45:
        sn = f"{first.lower()}_{last.lower()}"
    elif r < 0.7:
        sn = f"{rng.choice(NICK)}{first.lower()}{rng.randrange(10, 999)}"
    elif r < 0.85:
        sn = f"{first}{rng.randrange(1, 9999)}"
    else:
        sn = f"{rng.choice(NICK)}_{rng.choice(NICK)}"
    sn = "".join(ch for ch in sn if ch.isascii() and (ch.isalnum() or ch == "_"))[:15]
    if lang == "ja" and rng.random() < 0.7:
        name = rng.choice(JA_NAMES)
    elif lang == "ar" and rng.random() < 0.7:
        name = rng.choice(AR_NAMES)
    elif lang == "ko" and rng.random() < 0.7:
        name = rng.choice(KO_NAMES)
    else:
        name = f"{first} {last}" if rng.random() < 0.6 else f"{first} {rng.choice(EMOJI)}"
    return sn, name


def _bot_name(rng: random.Random, topic: str) -> tuple[str, str]:
    r = rng.random()
    if r < 0.3:
        sn = f"user{rng.randrange(10_000, 99_999_999)}"
        name = sn
    elif r < 0.6:
        n = rng.randrange(1, 99)
        sn = f"{topic}_bot_{n}"
        name = f"{topic.capitalize()} Bot {n}"
    elif r < 0.85:
        sn = _rand_str(rng, ALNUM, 15)
        name = _rand_str(rng, ALNUM, rng.randrange(6, 12))
    else:
        sn = f"{topic}{rng.choice(('alerts', 'feed', 'daily', 'update'))}{rng.randrange(100, 9999)}"
        name = f"{topic.capitalize()} {rng.choice(('Alerts', 'Feed', 'Daily', 'Updates'))}"
    return sn[:15], name


def _account_user(a: _Account, day_index: int) -> dict:
    followers = a.followers + int(a.follower_rate * day_index)
    statuses = a.statuses + int(a.status_rate * day_index)
    u: dict[str, Any] = {
        "id": a.uid, "id_str": str(a.uid), "name": a.name, "screen_name": a.sn,
        "location": a.location, "url": a.url, "description": a.bio,
        "translator_type": a.translator, "protected": a.protected, "verified": a.verified,
        "followers_count": followers, "friends_count": a.friends, "listed_count": a.listed,
        "favourites_count": a.favs, "statuses_count": statuses, "created_at": a.created_str,
        "utc_offset": None, "time_zone": None, "geo_enabled": a.geo, "lang": None,
        "contributors_enabled": False, "is_translator": False,
    }
    if a.old_theme:
        u["profile_background_color"] = "C0DEED"
        u["profile_background_image_url"] = THEME1
        u["profile_background_image_url_https"] = THEME1_S
    else:
        u["profile_background_color"] = "F5F8FA"
        u["profile_background_image_url"] = ""
        u["profile_background_image_url_https"] = ""
    u["profile_background_tile"] = False
    u["profile_link_color"] = a.link_color
    u["profile_sidebar_border_color"] = "C0DEED"
    u["profile_sidebar_fill_color"] = "DDEEF6"
    u["profile_text_color"] = "333333"
    u["profile_use_background_image"] = True
    if a.default_image:
        u["profile_image_url"] = DEFAULT_IMG
        u["profile_image_url_https"] = DEFAULT_IMG_S
    else:
        u["profile_image_url"] = "http://pbs.twimg.com/profile_images/" + a.img
        u["profile_image_url_https"] = "https://pbs.twimg.com/profile_images/" + a.img
    if a.banner:
        u["profile_banner_url"] = f"https://pbs.twimg.com/profile_banners/{a.uid}/{a.banner}"
    u["default_profile"] = a.default_profile
    u["default_profile_image"] = a.default_image
    u["following"] = None
    u["follow_request_sent"] = None
    u["notifications"] = None
    return u


def _fill_common(a: _Account, rng: random.Random, start_ms: int) -> None:
    a.created_str = _fmt_time(a.created_ms)
    a.translator = "regular" if rng.random() < 0.01 else "none"
    a.protected = False
    a.geo = rng.random() < 0.2
    a.old_theme = a.created_ms < 1483228800000 and rng.random() < 0.8
    a.link_color = "1DA1F2" if rng.random() < 0.8 else rng.choice(("E81C4F", "19CF86", "981CEB",
                                                                    "FAB81E", "0084B4"))
    img_ms = rng.randrange(a.created_ms, start_ms)
    a.img = (f"{_snowflake(img_ms, rng.randrange(32), rng.getrandbits(5), rng.getrandbits(12))}/"
             f"{_rand_str(rng, ALNUM, 8)}_normal.jpg")
    a.banner = None
    a.templates = ()


def _build_population(seed: int, tweets_per_day: int, start_ms: int,
                      cfg: PopulationConfig) -> tuple[list[_Account], list[list[int]], dict]:
    rng = random.Random(_mix(seed, T_POP))
    n = cfg.accounts or max(400, tweets_per_day // 4)
    lo, hi = cfg.group_size
    sizes = [rng.randint(lo, hi) for _ in range(cfg.groups)]
    n_coord = sum(sizes)
    n_bot = max(1, int(round(n * cfg.automated_share)))
    n_human = n - n_bot - n_coord
    if n_human < max(50, n // 3):
        raise ValueError(f"population of {n} accounts too small for {n_coord} group members "
                         f"and {n_bot} automated accounts; raise accounts/tweets_per_day or "
                         "shrink groups")
    kinds = [A_HUMAN] * n_human + [A_BOT] * n_bot + [A_COORD] * n_coord
    rng.shuffle(kinds)
    gi = [g for g, s in enumerate(sizes) for _ in range(s)]
    rng.shuffle(gi)
    day_ms = 86_400_000
    group_meta = []
    for g in range(cfg.groups):
        glang = rng.choices(LANGS[:5], weights=(0.5, 0.1, 0.2, 0.1, 0.1))[0]
        word = rng.choice(SLOGAN_WORDS)
        tag = rng.choice(("Vote", "Stand", "Boycott", "Save", "Support", "Stop")) + \
            rng.choice(("Freedom", "OurFuture", "TheTruth", "Reform", "Nation", "Change")) + \
            str(rng.randrange(1, 99))
        created_base = start_ms - rng.randrange(20, 400) * day_ms
        bio = rng.choice(SLOGANS[glang]).format(w=word) + f" #{tag}"
        group_meta.append({"lang": glang, "word": word, "tag": tag, "created": created_base,
                           "bio": bio, "hubs": 2})
    accts: list[_Account] = []
    used_sn: set[str] = set()
    used_uid: set[int] = set()
    members: list[list[int]] = [[] for _ in range(cfg.groups)]
    gpos = 0
    for idx, kind in enumerate(kinds):
        a = _Account()
        a.idx = idx
        a.kind = kind
        a.group = None
        a.sub = 0
        a.source = None
        if kind == A_HUMAN:
            a.lang = rng.choices(LANGS, weights=LANG_W)[0]
            r = rng.random()
            if r < 0.6:
                a.created_ms = start_ms - rng.randrange(30 * day_ms, 12 * 365 * day_ms)
            else:
                a.created_ms = start_ms - rng.randrange(30 * day_ms, 3 * 365 * day_ms)
            sn, a.name = _human_name(rng, a.lang)
            a.location = rng.choice(CITIES) if rng.random() < 0.5 else None
            a.url = _tco(rng) if rng.random() < 0.15 else None
            a.bio = rng.choice(BIOS[a.lang]) if rng.random() < 0.75 else None
            a.verified = rng.random() < 0.005
            a.followers = _lognorm_int(rng, 60_000 if a.verified else 300, 1.3)
            a.friends = _lognorm_int(rng, 350, 1.0, hi=5000)
            a.listed = a.followers // rng.randrange(60, 400)
            a.favs = _lognorm_int(rng, 5000, 1.4)
            a.statuses = _lognorm_int(rng, 8000, 1.3, lo=10)
            a.status_rate = rng.uniform(2, 40)
            a.follower_rate = rng.uniform(0, 2)
            a.default_profile = rng.random() < 0.45
            a.default_image = rng.random() < 0.03
        elif kind == A_BOT:
            a.lang = rng.choices(("en", "ja", "es", "pt", "ar"), weights=(0.7, 0.12, 0.08,
                                                                          0.06, 0.04))[0]
            a.sub = rng.choices((0, 1, 2), weights=(0.5, 0.25, 0.25))[0]  # poster/replier/amp
            topic = rng.choice(BOT_TOPICS)
            young = rng.random() < 0.75
            a.created_ms = start_ms - (rng.randrange(1 * day_ms, 60 * day_ms) if young
                                       else rng.randrange(200 * day_ms, 3 * 365 * day_ms))
            sn, a.name = _bot_name(rng, topic)
            a.location = None
            a.url = _tco(rng) if rng.random() < 0.3 else None
            bio = rng.choice(BOT_BIOS)
            a.bio = bio if bio or rng.random() < 0.5 else None
            a.verified = False
            a.followers = _lognorm_int(rng, 15, 1.2)
            a.friends = _lognorm_int(rng, 1500, 0.6, lo=200, hi=5001)
            a.listed = rng.randrange(0, 3)
            a.favs = _lognorm_int(rng, 20, 1.5)
            age_days = max(1.0, (start_ms - a.created_ms) / day_ms)
            a.status_rate = rng.uniform(150, 1500)
            a.statuses = int(age_days * a.status_rate * rng.uniform(0.7, 1.0)) + 10
            a.follower_rate = rng.uniform(0, 0.5)
            a.default_profile = rng.random() < 0.9
            a.default_image = rng.random() < 0.7
            a.source = rng.choice(BOT_SOURCES) if rng.random() < 0.75 else WEB_SOURCE
            a.templates = tuple(rng.sample(range(8), rng.randint(1, 2)))
        else:
            g = gi[gpos]
            gpos += 1
            meta = group_meta[g]
            a.group = g
            members[g].append(idx)
            a.lang = meta["lang"]
            a.created_ms = meta["created"] + rng.randrange(-3 * day_ms, 3 * day_ms)
            first, last = rng.choice(FIRST), rng.choice(LAST)
            if rng.random() < 0.6:
                sn = f"{first}{last}{rng.randrange(10**7, 10**8)}"[:15]
            else:
                sn = f"{first.lower()}_{rng.randrange(10**5, 10**8)}"[:15]
            a.name = f"{first} {last}" if rng.random() < 0.7 else f"{first} {rng.choice(EMOJI)}"
            a.location = rng.choice(CITIES) if rng.random() < 0.3 else None
            a.url = None
            a.bio = meta["bio"] if rng.random() < 0.6 else (rng.choice(BIOS[a.lang])
                                                           if rng.random() < 0.5 else None)
            a.verified = False
            a.followers = _lognorm_int(rng, 40, 1.0)
            a.friends = _lognorm_int(rng, 600, 0.6, hi=5000)
            a.listed = 0
            a.favs = _lognorm_int(rng, 800, 1.0)
            a.statuses = _lognorm_int(rng, 2500, 0.8, lo=50)
            a.status_rate = rng.uniform(30, 150)
            a.follower_rate = rng.uniform(0, 3)
            a.default_profile = rng.random() < 0.8
            a.default_image = rng.random() < 0.4
        base = sn or "user"
        while base in used_sn or len(base) < 4:
            base = (base[:11] + str(rng.randrange(1000, 9999)))[:15]
        used_sn.add(base)
        a.sn = base
        a.created_ms = min(a.created_ms, start_ms - day_ms)
        uid = _uid_for(a.created_ms, rng)
        while uid in used_uid:
            uid += 1
        used_uid.add(uid)
        a.uid = uid
        _fill_common(a, rng, start_ms)
        if kind != A_BOT and rng.random() < 0.6:
            a.banner = str(rng.randrange(a.created_ms // 1000, start_ms // 1000))
        accts.append(a)
    return accts, members, {"groups": group_meta}


# --------------------------------------------------------------------------------------------
# model: population + per-day plans; every minute is a pure function of it


@dataclasses.dataclass
class _DayPlan:
    date: _dt.date
    day_ms: int
    minutes: list[int]  # minute-of-day per selected minute index
    events: list[list[tuple]]  # per minute: (ms_in_minute, acct, kind, extra)
    n_regular: list[int]
    n_foreign_deletes: list[int]
    notices: list[list[tuple]]  # per minute: (ms, type, value)
    faults: list[list[str]]  # per minute: fault kinds
    empty_j: int | None
    dot_j: int | None
    class_w: list[tuple[float, float, float]]  # per hour: weights human/bot/coord
    group_sources: dict  # (g, s) -> (created_ms, id, hub)
    group_counts: dict  # (g, s) -> retweeters
    layout: str


class _Model:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.seed = spec["seed"]
        self.tpd = spec["tweets_per_day"]
        self.cfg = PopulationConfig(**spec["population"])
        self.start = _dt.date.fromisoformat(spec["start_date"])
        self.days = spec["days"]
        self.M = spec["minutes_per_day"]
        self.faults = spec["faults"]
        self.layouts = spec["layouts"]
        start_ms = calendar.timegm(self.start.timetuple()) * 1000
        self.start_ms = start_ms
        self.accts, self.members, meta = _build_population(self.seed, self.tpd, start_ms, self.cfg)
        self.group_meta = meta["groups"]
        self.by_kind: dict[int, tuple[list[int], tuple[float, ...]]] = {}
        wrng = random.Random(_mix(self.seed, T_POP, 2))
        for kind in (A_HUMAN, A_BOT, A_COORD):
            idxs = [a.idx for a in self.accts if a.kind == kind]
            cum, acc = [], 0.0
            for i in idxs:
                w = math.exp(wrng.gauss(0, 1.2)) if kind == A_HUMAN else (
                    wrng.uniform(0.5, 2.0) if kind == A_BOT else wrng.uniform(0.5, 1.5))
                acc += w
                cum.append(acc)
            self.by_kind[kind] = (idxs, tuple(cum))
        # reply-capable bots (for bursts)
        rb = [a.idx for a in self.accts if a.kind == A_BOT and a.sub == 1]
        self.reply_bots = rb or [a.idx for a in self.accts if a.kind == A_BOT]
        self.pool_total = max(100, self.tpd // 40)
        self.pool_n = {L: max(5, int(round(self.pool_total * w))) for L, w in zip(LANGS, LANG_W)}
        self.celeb_n = {L: max(10, self.pool_n[L] // 8) for L in LANGS}
        self.plans = [self._plan_day(d) for d in range(self.days)]

    # ---- day plan ----------------------------------------------------------------------
    def _plan_day(self, d: int) -> _DayPlan:
        cfg = self.cfg
        rng = random.Random(_mix(self.seed, T_DAY, d))
        date = self.start + _dt.timedelta(days=d)
        day_ms = self.start_ms + d * 86_400_000
        M = self.M
        minutes = [(j * 1440) // M for j in range(M)]
        empty_j = dot_j = None
        if self.faults:
            empty_j = rng.randrange(1, M)
            dot_j = rng.choice([j for j in range(M) if j != empty_j])
        eligible = [j for j in range(M) if j != empty_j]
        events: list[list[tuple]] = [[] for _ in range(M)]
        # hourly class weights: humans diurnal, bots flat
        class_w = []
        for h in range(24):
            diurnal = 1.0 + 0.55 * math.cos(2 * math.pi * (h - 14) / 24)
            hw = (1.0 - cfg.automated_volume - cfg.coordinated_volume) * diurnal
            class_w.append((hw, cfg.automated_volume, cfg.coordinated_volume))
        tot_members = sum(len(m) for m in self.members) or 1
        p = cfg.group_participation
        group_sources: dict = {}
        group_counts: dict = {}
        if self.members and tot_members:
            S = max(1, int(round(cfg.group_retweet_volume * self.tpd / (p * tot_members))))
            P = max(1, int(round(cfg.group_post_volume * self.tpd / (p * tot_members))))
            for g, mem in enumerate(self.members):
                for s in range(S):
                    j = rng.choice(eligible)
                    base = rng.randrange(0, 12_000)
                    burst_abs = day_ms + minutes[j] * 60_000 + base
                    created = burst_abs - rng.randrange(5_000, 600_000)
                    sid = _snowflake(created, 20 + (g >> 5) % 4, g, s)
                    hub = rng.randrange(self.group_meta[g]["hubs"])
                    group_sources[(g, s)] = (created, sid, hub)
                    n_rt = 0
                    for m in mem:
                        if rng.random() < p:
                            off = base + rng.randrange(800, 47_000)
                            events[j].append((min(off, 59_999), m, K_GRT, (g, s)))
                            n_rt += 1
                    group_counts[(g, s)] = n_rt
                for q in range(P):
                    k0 = rng.randrange(len(eligible))
                    for m in mem:
                        if rng.random() < p:
                            j = eligible[min(len(eligible) - 1, k0 + rng.choice((0, 0, 0, 1)))]
                            events[j].append((rng.randrange(60_000), m, K_GPOST, (g, q)))
        # rapid-fire reply bursts
        burst_total = int(round(cfg.reply_burst_volume * self.tpd))
        made = 0
        bno = 0
        while made < burst_total and self.reply_bots:
            acct = rng.choice(self.reply_bots)
            k = min(rng.randint(3, 8), burst_total - made)
            j = rng.choice(eligible)
            t = rng.randrange(0, max(1, 60_000 - 7_000 * k))
            for i in range(k):
                events[j].append((t, acct, K_BURST, (bno, i)))
                t += rng.randrange(1_200, 7_000)
            made += k
            bno += 1
        injected = sum(len(e) for e in events)
        regular = self.tpd - injected
        if regular < 0.3 * self.tpd:
            raise ValueError(f"planted events ({injected}) leave too few regular tweets for "
                             f"tweets_per_day={self.tpd}; use fewer/smaller groups")
        # allocate regular tweets over minutes proportional to total activity of the hour
        wts = [0.0] * M
        for j in eligible:
            cw = class_w[minutes[j] // 60]
            wts[j] = cw[0] + cw[1] + cw[2]
        n_regular = _largest_remainder(regular, wts)
        n_fdel = _largest_remainder(int(round(cfg.foreign_delete_rate * self.tpd)), wts)
        notices: list[list[tuple]] = [[] for _ in range(M)]
        per = {"limit": 60, "scrub_geo": 500, "status_withheld": 250, "user_withheld": 700}
        track = rng.randrange(50, 400)
        for typ, every in per.items():
            cnt = max(1, M // every)
            for _ in range(cnt):
                j = rng.choice(eligible)
                notices[j].append((rng.randrange(60_000), typ, None))
        for j in range(M):  # monotone "track" counters for limit notices
            lst = sorted(notices[j])
            out = []
            for ms, typ, _ in lst:
                if typ == "limit":
                    track += rng.randrange(10, 500)
                    out.append((ms, typ, track))
                else:
                    out.append((ms, typ, None))
            notices[j] = out
        faults: list[list[str]] = [[] for _ in range(M)]
        if self.faults:
            for kind in ("truncated_json", "truncated_json", "non_utf8", "missing_id"):
                faults[rng.choice(eligible)].append(kind)
            for _ in range(rng.randint(3, 6)):
                faults[rng.choice(eligible)].append("blank")
        layout = self.layouts[d % len(self.layouts)]
        return _DayPlan(date, day_ms, minutes, events, n_regular, n_fdel, notices, faults,
                        empty_j, dot_j, class_w, group_sources, group_counts, layout)

    # ---- skeleton ----------------------------------------------------------------------
    @functools.lru_cache(maxsize=48)
    def skeleton(self, d: int, j: int) -> tuple:
        """Slots of minute j of day d: tuple of (abs_ms, id, acct, kind, extra, subseed)."""
        plan = self.plans[d]
        rng = random.Random(_mix(self.seed, T_MIN, d, j))
        slots = list(plan.events[j])
        cw = plan.class_w[plan.minutes[j] // 60]
        ctot = cw[0] + cw[1] + cw[2]
        c0, c1 = cw[0] / ctot, (cw[0] + cw[1]) / ctot
        for _ in range(plan.n_regular[j]):
            ms = rng.randrange(60_000)
            r = rng.random()
            kind_cls = A_HUMAN if r < c0 else (A_BOT if r < c1 else A_COORD)
            idxs, cum = self.by_kind[kind_cls]
            if not idxs:
                idxs, cum = self.by_kind[A_HUMAN]
                kind_cls = A_HUMAN
            acct = idxs[min(len(idxs) - 1, bisect.bisect_right(cum, rng.random() * cum[-1]))]
            r = rng.random()
            if kind_cls == A_BOT:
                sub = self.accts[acct].sub
                if sub == 0:
                    k = K_BOTPOST if r < 0.8 else (K_RT if r < 0.9 else K_BOTREPLY)
                elif sub == 1:
                    k = K_BOTREPLY if r < 0.7 else (K_BOTPOST if r < 0.9 else K_RT)
                else:
                    k = K_RT if r < 0.85 else (K_BOTPOST if r < 0.95 else K_QUOTE)
            elif kind_cls == A_COORD:
                k = K_RT if r < 0.5 else (K_REPLY if r < 0.65 else (K_QUOTE if r < 0.7
                                                                    else K_ORIG))
            else:
                k = K_RT if r < 0.5 else (K_REPLY if r < 0.71 else (K_QUOTE if r < 0.75
                                                                    else K_ORIG))
            slots.append((ms, acct, k, None))
        order = sorted(range(len(slots)), key=lambda i: slots[i][0])
        base = plan.day_ms + plan.minutes[j] * 60_000
        used: dict[tuple, int] = {}
        out = []
        for i in order:
            ms, acct, k, extra = slots[i]
            dc = rng.randrange(16)
            w = rng.getrandbits(5)
            key = (ms, dc, w)
            seq = used.get(key, 0)
            used[key] = seq + 1
            out.append((base + ms, _snowflake(base + ms, dc, w, seq), acct, k, extra,
                        rng.getrandbits(62)))
        return tuple(out)

    # ---- users -------------------------------------------------------------------------
    @functools.lru_cache(maxsize=32768)
    def user_frag(self, idx: int, d: int) -> orjson.Fragment:
        return orjson.Fragment(orjson.dumps(_account_user(self.accts[idx], d)))

    @functools.lru_cache(maxsize=4096)
    def outside(self, tag: int, a: int, b: int) -> _Account:
        """A popular account outside the population (tag T_CELEB: lang index, n; T_HUB: g, h)."""
        rng = random.Random(_mix(self.seed, tag, a, b))
        acc = _Account()
        acc.idx = -1
        acc.kind = A_HUMAN
        acc.group = None
        acc.sub = 0
        acc.source = None
        if tag == T_HUB:
            meta = self.group_meta[a]
            acc.lang = meta["lang"]
            word = meta["word"]
            acc.sn = f"{word}{rng.choice(('Now', 'Movement', 'Voice', 'News', 'Daily'))}{b + 1}"
            acc.name = f"{word} {rng.choice(('Movement', 'Network', 'Voice'))}"
            acc.bio = meta["bio"]
            acc.verified = False
            acc.followers = _lognorm_int(rng, 20_000, 0.8)
        else:
            acc.lang = LANGS[a]
            sn, acc.name = _human_name(rng, acc.lang)
            acc.sn = (sn[:11] + str(b)) if len(sn) > 4 else sn + str(1000 + b)
            acc.bio = rng.choice(BIOS[acc.lang])
            acc.verified = rng.random() < 0.4
            acc.followers = _lognorm_int(rng, 400_000 if acc.verified else 40_000, 1.0)
        acc.created_ms = self.start_ms - rng.randrange(400, 4000) * 86_400_000
        acc.uid = _uid_for(acc.created_ms, rng)
        acc.location = rng.choice(CITIES) if rng.random() < 0.6 else None
        acc.url = _tco(rng) if rng.random() < 0.5 else None
        acc.friends = _lognorm_int(rng, 800, 1.0)
        acc.listed = acc.followers // rng.randrange(50, 300)
        acc.favs = _lognorm_int(rng, 20_000, 1.0)
        acc.statuses = _lognorm_int(rng, 30_000, 0.8, lo=100)
        acc.status_rate = rng.uniform(5, 60)
        acc.follower_rate = acc.followers * rng.uniform(0.0005, 0.005)
        acc.default_profile = rng.random() < 0.2
        acc.default_image = False
        _fill_common(acc, rng, self.start_ms)
        acc.banner = str(rng.randrange(acc.created_ms // 1000, self.start_ms // 1000))
        return acc

    @functools.lru_cache(maxsize=8192)
    def outside_frag(self, tag: int, a: int, b: int, d: int) -> orjson.Fragment:
        return orjson.Fragment(orjson.dumps(_account_user(self.outside(tag, a, b), d)))

    # ---- text --------------------------------------------------------------------------
    def _body(self, rng: random.Random, tb: _TB, lang: str, long: bool) -> None:
        phrases = PHRASES[lang]
        n = rng.randint(5, 8) if long else rng.choices((1, 2, 3), weights=(5, 3, 1))[0]
        sep = SEP[lang]
        parts = [rng.choice(phrases) for _ in range(n)]
        if long and sum(len(p) for p in parts) + len(sep) * n < 150:
            parts += [rng.choice(phrases) for _ in range(8)]
        tb.add(sep.join(parts))
        r = rng.random()
        if r < 0.3:
            tb.add(" " + "".join(rng.choices(EMOJI, k=rng.randint(1, 3))))
        if rng.random() < 0.2:
            tb.add(" ")
            tb.hashtag(rng.choice(HASHTAGS[lang]))
            if rng.random() < 0.3:
                tb.add(" ")
                tb.hashtag(rng.choice(HASHTAGS[lang]))
        if rng.random() < 0.08:
            tb.add(" ")
            tb.url(_tco(rng), f"https://www.example.com/{_rand_str(rng, LOWER_ALNUM, 8)}")

    def _bot_text(self, rng: random.Random, tb: _TB, a: _Account) -> str:
        t = rng.choice(a.templates) if a.templates else 0
        n = rng.randrange(1, 999)
        if t == 0:
            tb.add("BREAKING: " + rng.choice(HEADLINES) + " ")
            tb.hashtag(rng.choice(("news", "BreakingNews", "world")))
            tb.add(" ")
            tb.url(_tco(rng), f"https://news.example.com/{n}/{_rand_str(rng, LOWER_ALNUM, 6)}")
            return "en"
        if t == 1:
            sym = rng.choice(CRYPTO)
            tb.symbol(sym)
            tb.add(f" price update: ${rng.uniform(0.05, 40000):.2f} "
                   f"({rng.uniform(-9, 9):+.2f}%) ")
            tb.hashtag("crypto")
            tb.add(" ")
            tb.hashtag(sym)
            return "en"
        if t == 2:
            tb.add(f"Current weather in {rng.choice(CITIES)}: {rng.randint(-15, 35)}°C, "
                   f"{rng.choice(WEATHER)}. ")
            tb.hashtag("weather")
            return "en"
        if t == 3:
            tb.add(f"🎁 GIVEAWAY #{n} 🎁 RT + follow to win {rng.choice(BOT_THINGS)}! "
                   "Ends soon. ")
            tb.hashtag("giveaway")
            return "en"
        if t == 4:
            q, who = rng.choice(QUOTES)
            tb.add(f"\"{q}\" — {who} ")
            tb.hashtag("quote")
            tb.add(" ")
            tb.hashtag("motivation")
            return "en"
        if t == 5:
            tb.add(f"We're hiring! {rng.choice(JOBS)} in {rng.choice(CITIES)}. Apply now: ")
            tb.url(_tco(rng), f"https://jobs.example.com/{n}")
            tb.add(" ")
            tb.hashtag("jobs")
            return "en"
        if t == 6:
            tb.add("Follow me and I follow back instantly ✅ ")
            tb.hashtag("followback")
            tb.add(" ")
            tb.hashtag("F4F")
            tb.add(f" {n}")
            return "en"
        if a.lang == "ja":
            tb.add(f"【自動投稿】{n}回目のお知らせです。")
            tb.url(_tco(rng), f"https://example.jp/{n}")
            return "ja"
        if a.lang in ("es", "pt"):
            tb.add(f"Noticia {n}: " + rng.choice(HEADLINES) + " ")
            tb.hashtag("noticias")
            return a.lang
        tb.add(f"Automated update #{n}: all systems normal.")
        return "en"

    # ---- nested statuses ----------------------------------------------------------------
    def pool_is_quote(self, d: int, li: int, k: int) -> bool:
        # the handful of most popular tweets are never quotes (keeps daily quote counts stable)
        return k >= 8 and _unit(self.seed, T_POOL, d, li, k, 5) < 0.05

    @functools.lru_cache(maxsize=8192)
    def pool_status(self, d: int, li: int, k: int) -> tuple[dict, int, int, int]:
        """Popular tweet k of language li, created during the 24 h before day d (not in data).
        Returns (status without counts, created_ms, popularity, celebrity index)."""
        rng = random.Random(_mix(self.seed, T_POOL, d, li, k))
        lang = LANGS[li]
        day_ms = self.start_ms + d * 86_400_000
        created = day_ms - rng.randrange(60_000, 86_400_000)
        tid = _snowflake(created, 16 + li % 4, (k >> 12) & 31, k & 4095)
        c = _zipf(rng, self.celeb_n[lang])
        acc = self.outside(T_CELEB, li, c)
        user = self.outside_frag(T_CELEB, li, c, d)
        tb = _TB()
        long = rng.random() < 0.12
        self._body(rng, tb, lang, long)
        media = (not long) and rng.random() < 0.3
        text, dtr, ext, ents, xents, sens = _finalize(rng, tb, tid, created, acc.sn, 0, media)
        quote = None
        if self.pool_is_quote(d, li, k):
            # quotes a (non-quote) popular tweet of the day before
            for _ in range(4):
                qk = rng.randrange(self.pool_n[lang])
                if not self.pool_is_quote(d - 1, li, qk):
                    qst, qcreated, qpop, qc = self.pool_status(d - 1, li, qk)
                    q = self.with_counts(qst, qcreated, qpop, created)
                    quote = (q["id"], q, _permalink(rng, self.outside(T_CELEB, li, qc).sn,
                                                    q["id"]))
                    break
        lang_out = lang if rng.random() > 0.05 else "und"
        st = _assemble(created, tid, text, dtr, _pick_source(rng), None, user, quote=quote,
                       ext=ext, entities=ents, ext_entities=xents, sensitive=sens,
                       lang=lang_out, top=False)
        pop = int(60_000 / (k + 1) ** 1.05) + rng.randrange(5, 200)
        return st, created, pop, c

    def pool_pick(self, rng: random.Random, lang: str, d: int) -> tuple[int, int, int]:
        li = LANGS.index(lang) if lang in LANGS else 0
        if rng.random() > 0.85:
            li = rng.choices(range(len(LANGS)), weights=LANG_W)[0]
        dd = d - 1 if rng.random() < 0.1 else d
        return dd, li, _zipf(rng, self.pool_n[LANGS[li]])

    def with_counts(self, st: dict, created: int, pop: int, now_ms: int) -> dict:
        age_h = max(0.01, (now_ms - created) / 3_600_000)
        f = min(1.0, (age_h / 8) ** 0.5)
        rt = max(1, int(pop * f))
        s = dict(st)
        s["quote_count"] = rt // 40
        s["reply_count"] = rt // 25
        s["retweet_count"] = rt
        s["favorite_count"] = int(rt * 1.6) + 1
        return s

    @functools.lru_cache(maxsize=4096)
    def group_source(self, d: int, g: int, s: int) -> tuple[dict, str, int, str, int]:
        created, sid, hub = self.plans[d].group_sources[(g, s)]
        meta = self.group_meta[g]
        rng = random.Random(_mix(self.seed, T_GSRC, d, g, s))
        acc = self.outside(T_HUB, g, hub)
        tb = _TB()
        lang = meta["lang"]
        tb.add(rng.choice(SLOGANS[lang]).format(w=meta["word"]) + "! ")
        tb.add(rng.choice(PHRASES[lang]) + " ")
        tb.hashtag(meta["tag"])
        if rng.random() < 0.5:
            tb.add(" ")
            tb.url(_tco(rng), f"https://campaign.example.org/{meta['tag'].lower()}/{s}")
        text, dtr, ext, ents, xents, sens = _finalize(rng, tb, sid, created, acc.sn, 0,
                                                      rng.random() < 0.2)
        st = _assemble(created, sid, text, dtr, WEB_SOURCE, None,
                       self.outside_frag(T_HUB, g, hub, d), ext=ext, entities=ents,
                       ext_entities=xents, sensitive=sens, lang=lang, top=False)
        return st, acc.sn, acc.uid, acc.name, created

    # ---- rendering of one slot ---------------------------------------------------------
    def render(self, d: int, j: int, slot: tuple, stats: dict | None) -> dict:
        ms, tid, ai, kind, extra, sub = slot
        rng = random.Random(sub)
        a = self.accts[ai]
        user = self.user_frag(ai, d)
        source = a.source if a.source and (kind in (K_BOTPOST, K_BOTREPLY, K_BURST) or
                                           rng.random() < 0.8) else _pick_source(rng)
        if kind in (K_RT, K_GRT):
            if kind == K_GRT:
                g, s = extra
                st, sn, suid, sname, created = self.group_source(d, g, s)
                pop = 30 + self.plans[d].group_counts[(g, s)] * 20
                nested = self.with_counts(st, created, pop, ms)
                src_user = (sn, sname, suid)
            else:
                dd, li, k = self.pool_pick(rng, a.lang, d)
                st, created, pop, c = self.pool_status(dd, li, k)
                nested = self.with_counts(st, created, pop, ms)
                acc = self.outside(T_CELEB, li, c)
                src_user = (acc.sn, acc.name, acc.uid)
            return self._retweet(rng, ms, tid, user, source, nested, src_user, stats)
        reply = None
        lead = 0
        tb = _TB()
        lang = a.lang
        quote = None
        if kind in (K_REPLY, K_BOTREPLY, K_BURST):
            reply, rsn, rname, ruid = self._reply_target(rng, d, j, ms, a, kind, stats)
            tb.mention(rsn, rname, ruid)
            tb.add(" ")
            lead = tb.n
        if kind == K_QUOTE:
            dd, li, k = self.pool_pick(rng, lang, d)
            st, created, pop, c = self.pool_status(dd, li, k)
            q = self.with_counts(st, created, pop, ms)
            acc = self.outside(T_CELEB, li, c)
            quote = (q["id"], q, _permalink(rng, acc.sn, q["id"]))
        long = False
        media = False
        if kind in (K_BOTPOST, K_BOTREPLY, K_BURST):
            if kind == K_BOTPOST:
                lang = self._bot_text(rng, tb, a)
            else:
                r2 = random.Random(_mix(self.seed, ai, 77))  # the bot's favourite lines
                tmpl = REPLY_SPAM[r2.randrange(len(REPLY_SPAM))] if rng.random() < 0.8 \
                    else rng.choice(REPLY_SPAM)
                thing = BOT_THINGS[r2.randrange(len(BOT_THINGS))]
                tb.add(tmpl.format(thing=thing))
                if rng.random() < 0.5:
                    tb.add(" " + rng.choice(EMOJI))
                lang = "en"
        elif kind == K_GPOST:
            g, q_ = extra
            meta = self.group_meta[g]
            r2 = random.Random(_mix(self.seed, T_GRP, d, g, q_))
            lang = meta["lang"]
            slogan = r2.choice(SLOGANS[lang]).format(w=meta["word"])
            phrase = r2.choice(PHRASES[lang])
            tag2 = r2.choice(HASHTAGS[lang])
            tb.add(slogan + ("! " if rng.random() < 0.7 else ". ") + phrase + " ")
            if rng.random() < 0.5:
                tb.hashtag(meta["tag"])
                tb.add(" ")
                tb.hashtag(tag2)
            else:
                tb.hashtag(tag2)
                tb.add(" ")
                tb.hashtag(meta["tag"])
            if rng.random() < 0.6:
                tb.add(" " + rng.choice(EMOJI))
        else:
            if rng.random() < 0.06:
                lang = "und"
                if kind == K_REPLY or rng.random() < 0.5:
                    tb.add("".join(rng.choices(EMOJI, k=rng.randint(1, 5))))
                else:
                    tb.hashtag(rng.choice(HASHTAGS[a.lang]))
                    tb.add(" " + rng.choice(EMOJI))
            else:
                if rng.random() < 0.12:
                    lang = rng.choices(LANGS, weights=LANG_W)[0]
                long = rng.random() < 0.1
                self._body(rng, tb, lang, long)
                media = (not long) and kind == K_ORIG and rng.random() < 0.15
        text, dtr, ext, ents, xents, sens = _finalize(rng, tb, tid, ms, a.sn, lead, media)
        t = _assemble(ms, tid, text, dtr, source, reply, user, quote=quote, ext=ext,
                      entities=ents, ext_entities=xents, sensitive=sens, lang=lang)
        if stats is not None:
            stats["replies"] += reply is not None
            stats["quotes"] += quote is not None
            stats["extended"] += ext is not None
            stats["langs"][lang] = stats["langs"].get(lang, 0) + 1
            stats["coordinated_posts"] += kind == K_GPOST
            stats["reply_burst_tweets"] += kind == K_BURST
        return t

    def _retweet(self, rng, ms, tid, user, source, nested, src_user, stats) -> dict:
        sn, name, suid = src_user
        prefix = f"RT @{sn}: "
        p = len(prefix)
        if "extended_tweet" in nested:
            body = nested["extended_tweet"]["full_text"]
            bents = nested["extended_tweet"]["entities"]
        else:
            body = nested["text"]
            bents = nested["entities"]
        ents = {"hashtags": _shift(bents["hashtags"], p), "urls": _shift(bents["urls"], p),
                "user_mentions": [{"screen_name": sn, "name": name, "id": suid,
                                   "id_str": str(suid), "indices": [3, 4 + len(sn)]}]
                + _shift(bents["user_mentions"], p),
                "symbols": _shift(bents["symbols"], p)}
        full = prefix + body
        xents = None
        sens = None
        if len(full) <= 140:
            text = full
            if "media" in bents:
                med = []
                for m in _shift(bents["media"], p):
                    m["source_status_id"] = nested["id"]
                    m["source_status_id_str"] = nested["id_str"]
                    m["source_user_id"] = suid
                    m["source_user_id_str"] = str(suid)
                    med.append(m)
                ents["media"] = med
                xents = {"media": med}
                sens = False
        else:
            c = _cut_point(ents, 139, full)
            text = full[:c].rstrip() + "…"
            ents = _within(ents, len(text) - 1)
        quote = None
        if nested.get("is_quote_status"):
            quote = (nested["quoted_status_id"], nested["quoted_status"],
                     nested["quoted_status_permalink"])
        lang = nested["lang"]
        if stats is not None:
            stats["retweets"] += 1
            stats["quotes"] += quote is not None
            stats["langs"][lang] = stats["langs"].get(lang, 0) + 1
        return _assemble(ms, tid, text, None, source, None, user, rt=nested, quote=quote,
                         entities=ents, ext_entities=xents, sensitive=sens, lang=lang)

    def _reply_target(self, rng, d, j, ms, a, kind, stats):
        r = rng.random()
        p_data = 0.12 if kind == K_REPLY else 0.05
        if r < p_data:
            tgt = self._in_data_target(rng, d, j)
            if tgt is not None:
                tid2, ai2, same = tgt
                b = self.accts[ai2]
                if stats is not None:
                    stats["reply_in_data_same" if same else "reply_in_data_prev"] += 1
                return (tid2, b.uid, b.sn), b.sn, b.name, b.uid
        if r < 0.35 and kind == K_REPLY:
            dd, li, k = self.pool_pick(rng, a.lang, d)
            st, _, _, c = self.pool_status(dd, li, k)
            acc = self.outside(T_CELEB, li, c)
            return (st["id"], acc.uid, acc.sn), acc.sn, acc.name, acc.uid
        # a tweet outside the sample, by an account outside the population
        back = int(rng.expovariate(1 / 3_600_000)) + 2_000
        rid = _snowflake(ms - back, 24 + rng.randrange(4), rng.getrandbits(5),
                         rng.getrandbits(12))
        created = ms - back - rng.randrange(86_400_000, 3000 * 86_400_000)
        ruid = _uid_for(created, rng)
        sn, name = _human_name(rng, a.lang)
        if len(sn) < 4:
            sn += str(rng.randrange(100, 999))
        return (rid, ruid, sn), sn, name, ruid

    def _in_data_target(self, rng, d, j):
        if j > 0 and (d == 0 or rng.random() < 0.75):
            j2 = j - rng.randint(1, min(5, j))
            d2, same = d, True
        elif d > 0:
            d2, same = d - 1, False
            M2 = len(self.plans[d2].minutes)
            step = max(1, M2 // 24)
            j2 = rng.randrange(0, M2, step)
        else:
            return None
        if j2 == self.plans[d2].empty_j:
            return None
        sk = self.skeleton(d2, j2)
        if not sk:
            return None
        for _ in range(4):
            s = sk[rng.randrange(len(sk))]
            if s[3] not in RT_KINDS:
                return s[1], s[2], same
        return None

    @functools.lru_cache(maxsize=16)
    def later_events(self, d: int, j: int) -> tuple:
        """Tweets of minute j re-emitted (0) or deleted (1) 1-5 minutes later: (what, back, slot).
        Decided by bits of the slot's sub-seed, so no extra hashing per tweet."""
        if j == self.plans[d].empty_j:
            return ()
        dup_lim = int(self.cfg.duplicate_rate * (1 << 20))
        del_lim = int(self.cfg.delete_rate * (1 << 20))
        out = []
        for slot in self.skeleton(d, j):
            sub = slot[5]
            if (sub & 0xFFFFF) < dup_lim:
                out.append((0, 1 + (sub >> 20) % 3, slot))
            if ((sub >> 24) & 0xFFFFF) < del_lim:
                out.append((1, 1 + (sub >> 44) % 5, slot))
        return tuple(out)

    # ---- one minute --------------------------------------------------------------------
    def minute(self, d: int, j: int) -> tuple[bytes, dict]:
        plan = self.plans[d]
        stats = _new_stats()
        if j == plan.empty_j:
            return b"", stats
        sk = self.skeleton(d, j)
        rng = random.Random(_mix(self.seed, T_MINX, d, j))
        items: list[tuple[int, int, bytes]] = []  # (ms, order, line)
        kinds = stats["tweets_by_account_kind"]
        for n, slot in enumerate(sk):
            t = self.render(d, j, slot, stats)
            items.append((slot[0], n, orjson.dumps(t)))
            kinds[ACCOUNT_KIND_NAMES[self.accts[slot[2]].kind]] += 1
            stats["coordinated_retweets"] += slot[3] == K_GRT
        stats["unique_tweets"] = len(sk)
        base = plan.day_ms + plan.minutes[j] * 60_000
        order = len(items)
        # duplicates and deletes of tweets from earlier minutes of the day
        for back in range(1, 6):
            j0 = j - back
            if j0 < 0:
                break
            for what, bk, slot in self.later_events(d, j0):
                if bk != back:
                    continue
                if what == 0:
                    line = orjson.dumps(self.render(d, j0, slot, None))
                    items.append((base + rng.randrange(60_000), order, line))
                    stats["duplicate_tweet_lines"] += 1
                else:
                    t_ms = base + rng.randrange(60_000)
                    items.append((t_ms, order, _delete_line(slot[1], self.accts[slot[2]].uid,
                                                            t_ms)))
                    stats["delete_notices"] += 1
                    stats["deletes_of_tweets_in_data"] += 1
                order += 1
        for _ in range(plan.n_foreign_deletes[j]):
            t_ms = base + rng.randrange(60_000)
            r = rng.random()
            if r < 0.4:
                old = t_ms - rng.randrange(1_000, 3_600_000)
            elif r < 0.7:
                old = t_ms - rng.randrange(3_600_000, 30 * 86_400_000)
            else:
                old = t_ms - rng.randrange(30 * 86_400_000, 3000 * 86_400_000)
            old = max(old, TWEPOCH + 1)
            otid = _snowflake(old, 24 + rng.randrange(8), rng.getrandbits(5), rng.getrandbits(12))
            ouid = _uid_for(old - rng.randrange(86_400_000, 2000 * 86_400_000), rng)
            items.append((t_ms, order, _delete_line(otid, ouid, t_ms)))
            order += 1
            stats["delete_notices"] += 1
        for ms_off, typ, val in plan.notices[j]:
            t_ms = base + ms_off
            items.append((t_ms, order, _notice_line(rng, typ, val, t_ms)))
            order += 1
            stats["other_notices"][typ] += 1
        items.sort()
        lines = [it[2] for it in items]
        # faults
        for fk in plan.faults[j]:
            pos = rng.randrange(len(lines) + 1)
            if fk == "blank":
                lines.insert(pos, b"")
                stats["blank_lines"] += 1
                continue
            line = self._fault_line(rng, d, j, base, fk)
            lines.insert(pos, line)
            stats["bad_lines"][fk] += 1
        stats["tweet_lines"] = stats["unique_tweets"] + stats["duplicate_tweet_lines"]
        stats["lines"] = len(lines) - stats["blank_lines"]
        return b"\r\n".join(lines) + b"\r\n", stats

    def _fault_line(self, rng, d, j, base, fk) -> bytes:
        ms = base + rng.randrange(60_000)
        tid = _snowflake(ms, 28 + rng.randrange(4), rng.getrandbits(5), rng.getrandbits(12))
        ai = rng.randrange(len(self.accts))
        a = self.accts[ai]
        tb = _TB()
        if fk == "non_utf8":
            tb.add("Café con leche, señor — déjà vu ")
        self._body(rng, tb, a.lang, False)
        text, dtr, ext, ents, xents, sens = _finalize(rng, tb, tid, ms, a.sn, 0, False)
        t = _assemble(ms, tid, text, dtr, _pick_source(rng), None, self.user_frag(ai, d),
                      ext=ext, entities=ents, ext_entities=xents, sensitive=sens, lang=a.lang)
        if fk == "missing_id":
            del t["id"]
            del t["id_str"]
            return orjson.dumps(t)
        line = orjson.dumps(t)
        if fk == "non_utf8":
            return line.replace("Café con leche, señor — déjà vu".encode(),
                                "Café con leche, señor - déjà vu".encode("latin-1"), 1)
        # truncated_json: cut at an ASCII byte near the middle
        cut = len(line) // 2 + rng.randrange(-len(line) // 5, len(line) // 5)
        while line[cut] >= 0x80:
            cut += 1
        return line[:cut]


def _permalink(rng: random.Random, sn: str, qid: int) -> dict:
    exp = f"https://twitter.com/{sn}/status/{qid}"
    disp = exp[8:]
    return {"url": _tco(rng), "expanded": exp, "display": disp[:26] + "…"}


def _delete_line(tid: int, uid: int, t_ms: int) -> bytes:
    return orjson.dumps({"delete": {"status": {"id": tid, "id_str": str(tid), "user_id": uid,
                                               "user_id_str": str(uid)},
                                    "timestamp_ms": str(t_ms)}})


def _notice_line(rng: random.Random, typ: str, val, t_ms: int) -> bytes:
    if typ == "limit":
        return orjson.dumps({"limit": {"track": val, "timestamp_ms": str(t_ms)}})
    uid = _uid_for(t_ms - rng.randrange(86_400_000, 2000 * 86_400_000), rng)
    if typ == "scrub_geo":
        upto = _snowflake(t_ms - rng.randrange(60_000, 90 * 86_400_000), 24 + rng.randrange(8),
                          rng.getrandbits(5), rng.getrandbits(12))
        return orjson.dumps({"scrub_geo": {"user_id": uid, "user_id_str": str(uid),
                                           "up_to_status_id": upto,
                                           "up_to_status_id_str": str(upto)}})
    countries = sorted(rng.sample(["DE", "FR", "IN", "TR", "RU", "AT", "BR", "KR"],
                                  rng.randint(1, 3)))
    if typ == "status_withheld":
        sid = _snowflake(t_ms - rng.randrange(60_000, 30 * 86_400_000), 24 + rng.randrange(8),
                         rng.getrandbits(5), rng.getrandbits(12))
        return orjson.dumps({"status_withheld": {"id": sid, "user_id": uid,
                                                 "withheld_in_countries": countries,
                                                 "timestamp_ms": str(t_ms)}})
    return orjson.dumps({"user_withheld": {"id": uid, "withheld_in_countries": countries,
                                           "timestamp_ms": str(t_ms)}})


def _largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    s = sum(weights)
    if total <= 0 or s <= 0:
        return [0] * len(weights)
    raw = [total * w / s for w in weights]
    out = [int(x) for x in raw]
    rest = total - sum(out)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[:rest]:
        out[i] += 1
    return out


def _new_stats() -> dict:
    return {"lines": 0, "blank_lines": 0, "tweet_lines": 0, "unique_tweets": 0,
            "duplicate_tweet_lines": 0, "replies": 0, "retweets": 0, "quotes": 0,
            "extended": 0, "delete_notices": 0, "deletes_of_tweets_in_data": 0,
            "other_notices": {"limit": 0, "scrub_geo": 0, "status_withheld": 0,
                              "user_withheld": 0},
            "bad_lines": {"truncated_json": 0, "non_utf8": 0, "missing_id": 0},
            "langs": {},
            "tweets_by_account_kind": {"human": 0, "automated": 0, "coordinated": 0},
            "reply_in_data_same": 0, "reply_in_data_prev": 0,
            "coordinated_retweets": 0, "coordinated_posts": 0, "reply_burst_tweets": 0}


def _merge(acc: dict, s: dict) -> None:
    for k, v in s.items():
        if isinstance(v, dict):
            tgt = acc.setdefault(k, {})
            for k2, v2 in v.items():
                tgt[k2] = tgt.get(k2, 0) + v2
        else:
            acc[k] = acc.get(k, 0) + v


# --------------------------------------------------------------------------------------------
# member paths, compression


def member_path(layout: str, date: _dt.date, minute_of_day: int, ext: str) -> str:
    """Inner tar path of one minute file, e.g. ``01/02/00/24.json.bz2``."""
    hh, mm = divmod(minute_of_day, 60)
    if layout == "MM/DD/HH/mm":
        return f"{date.month:02d}/{date.day:02d}/{hh:02d}/{mm:02d}.json.{ext}"
    if layout == "YYYY/MM/DD/HH/mm":
        return f"{date.year:04d}/{date.month:02d}/{date.day:02d}/{hh:02d}/{mm:02d}.json.{ext}"
    if layout == "YYYYMMDD/YYYYMMDDHHMMSS":
        ymd = f"{date.year:04d}{date.month:02d}{date.day:02d}"
        return f"{ymd}/{ymd}{hh:02d}{mm:02d}00.json.{ext}"
    raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")


def _ext_of(j: int) -> str:
    return "bz2" if j % 2 == 0 else "gz"


def _is_multistream(j: int) -> bool:
    return j % 6 == 0  # every third bz2 member


def _compress(data: bytes, j: int, seed: int, d: int) -> bytes:
    if not data:
        return b""
    if _ext_of(j) == "gz":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if _is_multistream(j):
        lines = data.split(b"\r\n")[:-1]
        k = 2 + _mix(seed, d, j, 99) % 2
        n = len(lines)
        cuts = [0] + [max(1, (n * i) // k) for i in range(1, k)] + [n]
        parts = []
        for a, b in zip(cuts, cuts[1:]):
            if b > a:
                parts.append(bz2.compress(b"".join(x + b"\r\n" for x in lines[a:b])))
        return b"".join(parts)
    return bz2.compress(data)


def _appledouble(seed: int, d: int) -> bytes:
    rng = random.Random(_mix(seed, T_FAULT, d))
    head = (b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        " + b"\x00\x02"
            + b"\x00\x00\x00\x09\x00\x00\x00\x32\x00\x00\x0e\xb0"
            + b"\x00\x00\x00\x02\x00\x00\x0e\xe2\x00\x00\x01\x1e")
    body = b"ATTR" + bytes(rng.getrandbits(8) for _ in range(200))
    return (head + body).ljust(4096, b"\x00")


# --------------------------------------------------------------------------------------------
# multiprocessing plumbing

_MODEL: _Model | None = None


def _init_worker(spec: dict) -> None:
    global _MODEL
    if _MODEL is None or _MODEL.spec != spec:
        _MODEL = _Model(spec)


def _work(task: tuple[int, int]) -> tuple[int, int, bytes, dict]:
    d, j = task
    assert _MODEL is not None
    data, stats = _MODEL.minute(d, j)
    return d, j, _compress(data, j, _MODEL.seed, d), stats


# --------------------------------------------------------------------------------------------
# public entry point


def _norm_layouts(layout: str | Sequence[str]) -> list[str]:
    if isinstance(layout, str):
        layouts = list(LAYOUTS) if layout == "mixed" else [s.strip() for s in layout.split(",")]
    else:
        layouts = list(layout)
    for lay in layouts:
        if lay not in LAYOUTS:
            raise ValueError(f"unknown layout {lay!r}; expected one of {LAYOUTS} or 'mixed'")
    if not layouts:
        raise ValueError("no layout given")
    return layouts


def generate(out_dir: str | os.PathLike, start_date: str | _dt.date, days: int = 1,
             tweets_per_day: int = 4000, seed: int = 0, *, minutes_per_day: int | None = None,
             layout: str | Sequence[str] = "MM/DD/HH/mm", faults: bool = False,
             workers: int = 1, population: PopulationConfig | None = None,
             progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Write ``days`` daily tars plus ground truth under ``out_dir``; see the module docstring.

    Returns the per-day truth dicts keyed by ISO date."""
    if isinstance(start_date, _dt.datetime):
        start_date = start_date.date()
    if isinstance(start_date, str):
        start_date = _dt.date.fromisoformat(start_date)
    M = 1440 if minutes_per_day is None else int(minutes_per_day)
    if not 1 <= M <= 1440:
        raise ValueError("minutes_per_day must be within 1..1440")
    if faults and M < 3:
        raise ValueError("faults need at least 3 minutes per day")
    if days < 1 or tweets_per_day < 1:
        raise ValueError("days and tweets_per_day must be positive")
    cfg = population or PopulationConfig()
    spec = {"seed": int(seed), "tweets_per_day": int(tweets_per_day),
            "start_date": start_date.isoformat(), "days": int(days), "minutes_per_day": M,
            "faults": bool(faults), "layouts": _norm_layouts(layout),
            "population": dataclasses.asdict(cfg)}
    global _MODEL
    t0 = time.time()
    _MODEL = _Model(spec)
    model = _MODEL
    if progress:
        progress(f"model built in {time.time() - t0:.1f}s "
                 f"({len(model.accts)} accounts, {len(model.members)} groups)")
    out = os.fspath(out_dir)
    inc = os.path.join(out, "incoming", "twitterstream")
    truth_dir = os.path.join(out, "truth", "twitterstream")
    os.makedirs(truth_dir, exist_ok=True)
    tasks = [(d, j) for d in range(days) for j in range(M)]
    truths: dict[str, dict] = {}

    if workers > 1:
        ctx = multiprocessing.get_context("fork" if "fork" in
                                          multiprocessing.get_all_start_methods() else "spawn")
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(spec,))
        results: Iterable = pool.imap(_work, tasks, chunksize=4)
    else:
        pool = None
        results = map(_work, tasks)
    try:
        cur_day = -1
        tar = None
        tot: dict = {}
        counts: dict = {}
        seen_dirs: set[str] = set()
        for d, j, blob, stats in results:
            plan = model.plans[d]
            if d != cur_day:
                if tar is not None:
                    tar.close()
                    truths[model.plans[cur_day].date.isoformat()] = _finish_truth(
                        model, cur_day, tot, counts, truth_dir)
                cur_day = d
                tot = {}
                counts = {"members": 0, "directory_members": 0, "dotfile_members": 0,
                          "empty_members": 0, "bz2_members": 0, "gz_members": 0,
                          "multistream_bz2_members": 0}
                seen_dirs = set()
                day_dir = os.path.join(inc, plan.date.isoformat())
                os.makedirs(day_dir, exist_ok=True)
                tar = tarfile.open(os.path.join(day_dir, f"twitter-stream-{plan.date}.tar"),
                                   "w", format=tarfile.GNU_FORMAT)
            assert tar is not None
            ext = _ext_of(j)
            path = member_path(plan.layout, plan.date, plan.minutes[j], ext)
            mtime = (plan.day_ms // 1000) + plan.minutes[j] * 60 + 60
            parts = path.split("/")
            for k in range(1, len(parts)):
                dname = "/".join(parts[:k]) + "/"
                if dname not in seen_dirs:
                    seen_dirs.add(dname)
                    ti = _tarinfo(dname, 0, (plan.day_ms // 1000) + 86_400, tarfile.DIRTYPE)
                    tar.addfile(ti)
                    counts["directory_members"] += 1
            if j == plan.dot_j:
                junk = _appledouble(model.seed, d)
                dot = "/".join(parts[:-1] + ["._" + parts[-1]])
                tar.addfile(_tarinfo(dot, len(junk), mtime), io.BytesIO(junk))
                counts["members"] += 1
                counts["dotfile_members"] += 1
            tar.addfile(_tarinfo(path, len(blob), mtime), io.BytesIO(blob))
            counts["members"] += 1
            if not blob:
                counts["empty_members"] += 1
            elif ext == "bz2":
                counts["bz2_members"] += 1
                counts["multistream_bz2_members"] += _is_multistream(j)
            else:
                counts["gz_members"] += 1
            _merge(tot, stats)
            if progress and j % 240 == 239:
                progress(f"{plan.date} minute {j + 1}/{M} ({time.time() - t0:.0f}s)")
        if tar is not None:
            tar.close()
            truths[model.plans[cur_day].date.isoformat()] = _finish_truth(
                model, cur_day, tot, counts, truth_dir)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    _write_population_truth(model, truth_dir)
    if progress:
        progress(f"done in {time.time() - t0:.1f}s")
    return truths


def _tarinfo(name: str, size: int, mtime: int, typ: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = mtime
    ti.type = typ
    ti.mode = 0o755 if typ == tarfile.DIRTYPE else 0o644
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "archive"
    return ti


def _finish_truth(model: _Model, d: int, tot: dict, counts: dict, truth_dir: str) -> dict:
    plan = model.plans[d]
    s = {**_new_stats(), **tot}
    truth = {
        "date": plan.date.isoformat(),
        "tar": f"incoming/twitterstream/{plan.date}/twitter-stream-{plan.date}.tar",
        "layout": plan.layout,
        "seed": model.seed,
        "tweets_per_day": model.tpd,
        "minutes": len(plan.minutes),
        **counts,
        "lines": s["lines"],
        "blank_lines": s["blank_lines"],
        "tweet_lines": s["tweet_lines"],
        "unique_tweets": s["unique_tweets"],
        "duplicate_tweet_lines": s["duplicate_tweet_lines"],
        "replies": s["replies"],
        "retweets": s["retweets"],
        "quotes": s["quotes"],
        "extended": s["extended"],
        "delete_notices": s["delete_notices"],
        "deletes_of_tweets_in_data": s["deletes_of_tweets_in_data"],
        "other_notices": s["other_notices"],
        "bad_lines": s["bad_lines"],
        "langs": dict(sorted(s["langs"].items())),
        "tweets_by_account_kind": s["tweets_by_account_kind"],
        "replies_to_tweets_in_data": {"same_day": s["reply_in_data_same"],
                                      "previous_days": s["reply_in_data_prev"]},
        "coordinated_retweets": s["coordinated_retweets"],
        "coordinated_posts": s["coordinated_posts"],
        "reply_burst_tweets": s["reply_burst_tweets"],
    }
    with open(os.path.join(truth_dir, f"{plan.date}.json"), "w", encoding="utf-8") as fh:
        json.dump(truth, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    return truth


def _write_population_truth(model: _Model, truth_dir: str) -> None:
    with open(os.path.join(truth_dir, "accounts.csv"), "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["user_id", "screen_name", "kind", "group_id"])
        for a in model.accts:
            w.writerow([a.uid, a.sn, ACCOUNT_KIND_NAMES[a.kind],
                        "" if a.group is None else a.group])
    # The same truth as an analyst's label set, which the learned bot model trains on.
    labels_dir = os.path.join(os.path.dirname(os.path.dirname(truth_dir)), "incoming",
                              "labels", "generated_sample")
    os.makedirs(labels_dir, exist_ok=True)
    with open(os.path.join(labels_dir, "labels.csv"), "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["platform", "user_id", "label"])
        for a in model.accts:
            w.writerow(["twitter", a.uid, ACCOUNT_KIND_NAMES[a.kind]])
    rows = []
    for d, plan in enumerate(model.plans):
        for (g, s), (created, sid, hub) in sorted(plan.group_sources.items()):
            rows.append((g, plan.date.isoformat(), sid, model.outside(T_HUB, g, hub).uid,
                         plan.group_counts[(g, s)]))
    with open(os.path.join(truth_dir, "groups.csv"), "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["group_id", "members", "source_tweets"])
        for g, mem in enumerate(model.members):
            w.writerow([g, len(mem), len({r[2] for r in rows if r[0] == g and r[4] > 0})])
    with open(os.path.join(truth_dir, "group_sources.csv"), "w", newline="",
              encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["group_id", "date", "source_tweet_id", "source_user_id", "retweeters"])
        for r in rows:
            w.writerow(r)


# --------------------------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m botpipeline.samples.twitterstream",
        description="Generate Twitter Stream Grab-shaped daily tars with ground truth.")
    ap.add_argument("--out", required=True, help="output root (writes incoming/ and truth/)")
    ap.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--tweets-per-day", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes-per-day", type=int, default=None,
                    help="minutes per day spread over 24 h (default: all 1440)")
    ap.add_argument("--layout", default="MM/DD/HH/mm",
                    help="one of %s, a comma-separated list used per day in turn, or 'mixed'"
                    % ", ".join(LAYOUTS))
    ap.add_argument("--faults", action="store_true", help="inject the documented faults")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--groups", type=int, default=None, help="number of coordinated groups")
    ap.add_argument("--group-size", default=None, help="MIN,MAX members per group")
    ap.add_argument("--accounts", type=int, default=None, help="population size")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    kw: dict[str, Any] = {}
    if args.groups is not None:
        kw["groups"] = args.groups
    if args.group_size:
        lo, hi = (int(x) for x in args.group_size.split(","))
        kw["group_size"] = (lo, hi)
    if args.accounts is not None:
        kw["accounts"] = args.accounts
    log = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    truths = generate(args.out, args.start, args.days, args.tweets_per_day, args.seed,
                      minutes_per_day=args.minutes_per_day, layout=args.layout,
                      faults=args.faults, workers=args.workers,
                      population=PopulationConfig(**kw), progress=log)
    for day, t in truths.items():
        print(f"{day}: {t['members']} members, {t['lines']} lines, {t['unique_tweets']} tweets "
              f"({t['retweets']} RT, {t['replies']} replies, {t['quotes']} quotes), "
              f"{t['delete_notices']} deletes -> {os.path.join(args.out, t['tar'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
