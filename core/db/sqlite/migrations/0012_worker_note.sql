-- v12: what a worker wants seen beside its state ("loop blocked 12s by job 42").
ALTER TABLE workers ADD COLUMN note TEXT;
