-- Where the customer must go to approve a processing payment (a rail's
-- redirect, e.g. Orange Money's payment page); cleared once final.
ALTER TABLE payments ADD COLUMN next_action_url TEXT;
