"""Synthetic but valid Chinese identities for the demo: names, resident IDs, USCCs and mobiles."""

from __future__ import annotations

import random
from datetime import date, timedelta

from microlend.parties.kyc import _USCC_CHARS, resident_id_check_char, uscc_check_char

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国文辉玉梅红春生海燕志林波宁鹏飞成亮"
#: Region codes (县级行政区划代码) of a few real counties, where rural banks typically lend.
REGIONS = ["330782", "330381", "350583", "370283", "410184", "420281", "430181", "440981",
           "510181", "520181", "130181", "320582", "340181", "360281", "450881", "610481"]
SHOP_KINDS = ["便利店", "农资店", "小吃店", "五金店", "服装店", "养殖场", "果园", "修车铺", "快递点", "茶叶店"]
MOBILE_PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "157",
                   "158", "159", "177", "180", "181", "186", "187", "188", "189", "199"]
INDUSTRIES = ["retail", "catering", "agriculture", "manufacturing", "transport", "services", "wholesale"]


def person_name(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    return rng.choice(SURNAMES) + given


def resident_id(rng: random.Random, birth: date) -> str:
    body = f"{rng.choice(REGIONS)}{birth:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return body + resident_id_check_char(body)


def birth_date_for_age(rng: random.Random, age: int, as_of: date) -> date:
    return as_of - timedelta(days=age * 365 + rng.randrange(0, 365))


def uscc(rng: random.Random) -> str:
    """Registration authority 9 (industry and commerce), kind 2 (individual business) or 1 (enterprise)."""
    body = "9" + rng.choice("12") + rng.choice(REGIONS) + "".join(rng.choice(_USCC_CHARS) for _ in range(9))
    return body + uscc_check_char(body)


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(0, 10**8):08d}"


def business_name(rng: random.Random, owner: str) -> str:
    return f"{owner[0]}记{rng.choice(SHOP_KINDS)}"
