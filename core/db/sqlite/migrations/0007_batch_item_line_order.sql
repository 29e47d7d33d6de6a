-- v7: batch detail lists a batch's items in line order (not custom_id text order)
-- without sorting all of its lines at every refresh.
CREATE INDEX batch_items_line ON batch_items (batch_id, line_no);
