"""Seed 003's tables as SQLAlchemy ORM models (AccountDB, PostDB, ScoreDB, CommentStatsDB,
FlagDB), reduced to the columns its signals read and write; the baseline of bot_scores.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class AccountDB(Base):
    __tablename__ = "accounts"
    account_id: Mapped[str] = mapped_column(String, primary_key=True)
    username: Mapped[str] = mapped_column(String)
    description: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    verified: Mapped[bool] = mapped_column(Boolean)
    default_profile_image: Mapped[bool] = mapped_column(Boolean)
    last_analyzed: Mapped[datetime | None] = mapped_column(DateTime)


class PostDB(Base):
    __tablename__ = "posts"
    post_id: Mapped[str] = mapped_column(String, primary_key=True)
    author_id: Mapped[str] = mapped_column(String, index=True)
    kind: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    text: Mapped[str] = mapped_column(String)
    like_count: Mapped[int] = mapped_column(Integer)
    repost_count: Mapped[int] = mapped_column(Integer)
    reply_count: Mapped[int] = mapped_column(Integer)


class ScoreDB(Base):
    __tablename__ = "scores"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String)
    total_score: Mapped[float] = mapped_column(Float)
    signals: Mapped[str] = mapped_column(String)  # JSON
    flagged: Mapped[bool] = mapped_column(Boolean)
    analyzed_at: Mapped[datetime] = mapped_column(DateTime)


class CommentStatsDB(Base):
    __tablename__ = "comment_stats"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String)
    comments: Mapped[int] = mapped_column(Integer)
    repetitive_score: Mapped[float] = mapped_column(Float)
    timing_score: Mapped[float] = mapped_column(Float)


class FlagDB(Base):
    __tablename__ = "flags"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String)
    signal: Mapped[str] = mapped_column(String)
    score: Mapped[float] = mapped_column(Float)
