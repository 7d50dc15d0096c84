-- 0001_read_models.sql: the read models, with the old system's tables and
-- columns (so analysts' SQL keeps working) plus, on every row, the log
-- position of the event that last wrote it (source_pos).
--
-- Everything here is derived from the event log and can be rebuilt with
-- `replay --from 0 --projection pg`. Nothing writes these tables but the
-- projector.

CREATE TABLE watches (
    watch_id       uuid PRIMARY KEY,
    watch_name     varchar(255) NOT NULL,
    brand          varchar(100),
    model_code     varchar(50),
    description    text,
    price          numeric(10,2) NOT NULL,
    stock_quantity integer,
    image_url      text,
    category       varchar(50),
    created_at     timestamptz,
    updated_at     timestamptz NOT NULL,
    currency       char(3) NOT NULL DEFAULT 'USD',
    source_pos     bigint NOT NULL
);
CREATE INDEX watches_brand ON watches (brand);
CREATE INDEX watches_category ON watches (category);

CREATE TABLE customers (
    customer_id integer PRIMARY KEY,
    email       varchar(255) UNIQUE NOT NULL,
    full_name   varchar(255) NOT NULL,
    phone       varchar(50),
    address     text,
    city        varchar(100),
    country     varchar(100),
    is_admin    boolean NOT NULL DEFAULT false,
    created_at  timestamptz,
    role        varchar(20) NOT NULL DEFAULT 'user',
    source_pos  bigint NOT NULL
);

CREATE TABLE orders (
    order_id          integer PRIMARY KEY,
    customer_id       integer,
    order_date        timestamptz,
    total_amount      numeric(10,2) NOT NULL,
    status            varchar(50),
    payment_intent_id varchar(255),
    shipping_address  text,
    invoice_url       varchar(500),
    currency          char(3) NOT NULL DEFAULT 'USD',
    paid              boolean NOT NULL DEFAULT false,
    source_pos        bigint NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id, order_id);
CREATE INDEX orders_status ON orders (status);

CREATE TABLE order_items (
    item_id    integer PRIMARY KEY,
    order_id   integer NOT NULL,
    watch_id   uuid,
    quantity   integer NOT NULL,
    unit_price numeric(10,2) NOT NULL,
    subtotal   numeric(10,2) NOT NULL,
    source_pos bigint NOT NULL
);
CREATE INDEX order_items_order ON order_items (order_id);

CREATE TABLE invoices (
    invoice_id     integer PRIMARY KEY,
    order_id       integer,
    invoice_number varchar(50) UNIQUE NOT NULL,
    issue_date     timestamptz,
    pdf_path       varchar(500),
    total          numeric(10,2),
    source_pos     bigint NOT NULL
);

CREATE TABLE stock_movements (
    movement_id     integer PRIMARY KEY,
    watch_id        uuid,
    quantity_change integer NOT NULL,
    movement_type   varchar(50),
    reference_id    integer,
    notes           text,
    created_at      timestamptz,
    source_pos      bigint NOT NULL
);
CREATE INDEX stock_movements_watch ON stock_movements (watch_id);

CREATE TABLE integration_logs (
    log_id        integer PRIMARY KEY,
    order_id      integer,
    service       varchar(100) NOT NULL,
    status        varchar(50) NOT NULL,
    payload       jsonb,
    error_message text,
    created_at    timestamptz,
    source_pos    bigint NOT NULL
);

-- Payment events, for the questions the old tables could not answer
-- (failed and mismatched payments).
CREATE TABLE payments (
    source_pos        bigint PRIMARY KEY,
    order_id          integer NOT NULL,
    provider          varchar(20) NOT NULL,
    intent_id         varchar(255) NOT NULL,
    provider_event_id varchar(255),
    outcome           varchar(20) NOT NULL, -- intent, succeeded, mismatched, failed
    amount            numeric(10,2),
    currency          char(3),
    reason            text,
    created_at        timestamptz NOT NULL
);
CREATE INDEX payments_order ON payments (order_id);

-- Where the projector is: every event with a position below next_pos is
-- applied, in the same transaction as the rows it wrote. The counters give
-- rows without a natural key (items, movements) the same ids on every
-- rebuild.
CREATE TABLE projection_state (
    projection       text PRIMARY KEY,
    next_pos         bigint NOT NULL DEFAULT 0,
    next_item_id     integer NOT NULL DEFAULT 1,
    next_movement_id integer NOT NULL DEFAULT 1,
    next_log_id      integer NOT NULL DEFAULT 1,
    skipped_events   bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
