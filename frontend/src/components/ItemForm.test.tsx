import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { createItem } from '../api/endpoints';
import { jsonResponse, stubFetch } from '../test/http';
import { ItemForm } from './ItemForm';

describe('ItemForm', () => {
  it('shows a 422 from the API next to the field it names, with the request id', async () => {
    const fetch = stubFetch({
      'POST /items': () =>
        jsonResponse(
          422,
          { detail: [{ type: 'less_than', loc: ['body', 'price'], msg: 'Input should be less than 100000000', input: '5' }] },
          { 'x-request-id': 'req-422' },
        ),
    });
    const user = userEvent.setup();
    render(<ItemForm submitLabel="Create item" onSubmit={createItem} onCancel={() => {}} />);

    await user.type(screen.getByLabelText('Name'), 'Lamp');
    await user.type(screen.getByLabelText('Price'), '5');
    await user.click(screen.getByRole('button', { name: 'Create item' }));

    const price = await screen.findByLabelText('Price');
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(price).toHaveAttribute('aria-invalid', 'true');
    expect(price).toHaveAccessibleDescription(expect.stringContaining('Input should be less than 100000000'));
    expect(price).toHaveFocus();
    expect(screen.getByLabelText('Name')).not.toHaveAttribute('aria-invalid');
    expect(screen.getByRole('alert')).toHaveTextContent('Request id: req-422');
  });

  it('asks for a missing price before sending anything', async () => {
    const onSubmit = vi.fn(async () => {});
    const user = userEvent.setup();
    render(<ItemForm submitLabel="Create item" onSubmit={onSubmit} onCancel={() => {}} />);

    await user.type(screen.getByLabelText('Name'), 'Lamp');
    await user.click(screen.getByRole('button', { name: 'Create item' }));

    expect(onSubmit).not.toHaveBeenCalled();
    expect(screen.getByLabelText('Price')).toHaveAccessibleDescription(
      expect.stringContaining('Enter a price.'),
    );
  });

  it('submits every field, trimmed, with an empty description as null', async () => {
    const onSubmit = vi.fn(async () => {});
    const user = userEvent.setup();
    render(
      <ItemForm
        item={{
          id: 4,
          name: 'Old',
          description: 'Dusty',
          price: 12.5,
          is_available: true,
          owner_id: 1,
          created_at: '2025-01-01T00:00:00Z',
          updated_at: '2025-01-01T00:00:00Z',
        }}
        submitLabel="Save changes"
        onSubmit={onSubmit}
        onCancel={() => {}}
      />,
    );

    expect(screen.getByLabelText('Price')).toHaveValue('12.50');
    await user.clear(screen.getByLabelText('Name'));
    await user.type(screen.getByLabelText('Name'), '  New  ');
    await user.clear(screen.getByLabelText('Description'));
    await user.click(screen.getByLabelText('Available'));
    await user.click(screen.getByRole('button', { name: 'Save changes' }));

    expect(onSubmit).toHaveBeenCalledWith({ name: 'New', description: null, price: '12.50', is_available: false });
  });
});
